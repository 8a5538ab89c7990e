// Command etcd is upstream etcd's server, built from its Go module at the
// version pinned in go.mod so that tests never depend on a downloaded binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
