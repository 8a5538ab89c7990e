// kstatus reads Kubernetes objects (a JSON list or one object) on stdin and prints, for
// each, "<name> <status>" as sigs.k8s.io/cli-utils' kstatus computes it: the library
// Flux and Argo CD-style tools use to decide whether a resource is Current,
// InProgress or Failed. Test equipment for roster's conditions.
package main

import (
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	items := []unstructured.Unstructured{*u}
	if u.IsList() {
		list := &unstructured.UnstructuredList{}
		if err := list.UnmarshalJSON(data); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		items = list.Items
	}
	for _, item := range items {
		result, err := status.Compute(&item)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("%s %s %s\n", item.GetName(), result.Status, result.Message)
	}
}
