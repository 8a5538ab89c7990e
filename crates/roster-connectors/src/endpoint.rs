//! Where roster may send requests. A Tenant names its endpoints, and the people who may
//! edit a Tenant are not necessarily trusted with roster's network position, so:
//! - [`EndpointPolicy::check`] (the operator's policy, checked before any client is
//!   built): https only, except plain http to loopback and to hosts the operator lists;
//!   only hosts the operator allows, when it lists any; never a link-local, metadata or
//!   unspecified address;
//! - [`GuardedResolver`] checks again after DNS, so a name that resolves to the cloud
//!   metadata service is refused too;
//! - [`same_host_redirects`] follows a redirect only to the same host and scheme.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// The operator's endpoint policy (flags `--allowed-endpoint-hosts`,
/// `--allow-http-hosts`; Helm values `endpointPolicy.*`).
#[derive(Clone, Debug)]
pub struct EndpointPolicy {
    /// Host names allowed (`lms.example.com`, or `*.example.com` for any subdomain).
    /// Empty: any host not refused otherwise.
    pub allowed_hosts: Vec<String>,
    /// Hosts that may be called over plain http besides loopback (an in-cluster
    /// service without TLS, explicitly accepted by the operator).
    pub http_hosts: Vec<String>,
    /// Plain http to loopback (the stand-ins of tests and the demo).
    pub allow_loopback_http: bool,
}

impl Default for EndpointPolicy {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            http_hosts: Vec::new(),
            allow_loopback_http: true,
        }
    }
}

/// Why an endpoint is refused. The message names the endpoint's host (configuration,
/// not personal data) and says what to change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointRefused {
    #[error("{what} is not an absolute http(s) URL")]
    NotAUrl { what: &'static str },
    #[error(
        "{what} uses plain http to {host}; use https, or have the operator allow http to it (--allow-http-hosts)"
    )]
    PlainHttp { what: &'static str, host: String },
    #[error(
        "{what} points at {host}, a link-local, metadata or unspecified address, which roster never calls"
    )]
    Forbidden { what: &'static str, host: String },
    #[error(
        "{what} host {host} is not among the operator's allowed endpoint hosts (--allowed-endpoint-hosts)"
    )]
    NotAllowed { what: &'static str, host: String },
}

impl EndpointPolicy {
    /// Checks an endpoint a Tenant names; `what` is its field, e.g. `learningPlatform.endpoint`.
    pub fn check(&self, what: &'static str, url: &Url) -> Result<(), EndpointRefused> {
        let host = url.host().ok_or(EndpointRefused::NotAUrl { what })?;
        let name = match &host {
            Host::Domain(d) => d.to_ascii_lowercase(),
            Host::Ipv4(ip) => ip.to_string(),
            Host::Ipv6(ip) => ip.to_string(),
        };
        let ip = match host {
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            Host::Domain(_) => None,
        };
        if ip.is_some_and(|ip| !permitted(ip)) || METADATA_NAMES.contains(&name.as_str()) {
            return Err(EndpointRefused::Forbidden { what, host: name });
        }
        let loopback = ip.is_some_and(|ip| ip.is_loopback()) || name == "localhost";
        match url.scheme() {
            "https" => {}
            "http" if loopback && self.allow_loopback_http => {}
            "http" if matches_any(&self.http_hosts, &name) => {}
            "http" => return Err(EndpointRefused::PlainHttp { what, host: name }),
            _ => return Err(EndpointRefused::NotAUrl { what }),
        }
        let allowed = self.allowed_hosts.is_empty()
            || matches_any(&self.allowed_hosts, &name)
            || (loopback && self.allow_loopback_http);
        if !allowed {
            return Err(EndpointRefused::NotAllowed { what, host: name });
        }
        Ok(())
    }
}

/// Names of cloud metadata services.
const METADATA_NAMES: &[&str] = &[
    "metadata.google.internal",
    "metadata",
    "metadata.azure.internal",
];

fn matches_any(patterns: &[String], host: &str) -> bool {
    patterns.iter().any(|pattern| {
        let pattern = pattern.trim().to_ascii_lowercase();
        match pattern.strip_prefix("*.") {
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None => pattern == host,
        }
    })
}

/// Whether roster may connect to `ip`: never link-local (169.254.0.0/16, fe80::/10,
/// where cloud metadata services answer), the well-known metadata addresses, or the
/// unspecified address.
pub fn permitted(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4 == Ipv4Addr::new(100, 100, 100, 200))
        }
        IpAddr::V6(v6) => {
            let link_local = (v6.segments()[0] & 0xffc0) == 0xfe80;
            let metadata = v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
            let mapped = v6
                .to_ipv4_mapped()
                .is_some_and(|v4| !permitted(IpAddr::V4(v4)));
            !(link_local || metadata || v6.is_unspecified() || mapped)
        }
    }
}

/// A DNS resolver that drops every address roster must not connect to, and fails the
/// lookup when none is left: the check after resolution that a host name alone cannot
/// give.
#[derive(Clone, Debug, Default)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> =
                resolved.into_iter().filter(|a| permitted(a.ip())).collect();
            if kept.is_empty() {
                let refused: Box<dyn std::error::Error + Send + Sync> =
                    "the host resolves only to link-local, metadata or unspecified addresses"
                        .into();
                return Err(refused);
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// The resolver, ready for `ClientBuilder::dns_resolver`.
pub fn guarded_resolver() -> Arc<GuardedResolver> {
    Arc::new(GuardedResolver)
}

/// Follows at most 5 redirects, each to the same scheme, host and port as the request;
/// anything else is returned as it is (a 3xx the caller reports), so a compromised or
/// misconfigured endpoint cannot bounce roster's credentials to another host.
pub fn same_host_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same = attempt.previous().first().is_some_and(|first| {
            first.scheme() == attempt.url().scheme()
                && first.host_str() == attempt.url().host_str()
                && first.port_or_known_default() == attempt.url().port_or_known_default()
        });
        if attempt.previous().len() > 5 || !same {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn the_policy_table() {
        let open = EndpointPolicy::default();
        let strict = EndpointPolicy {
            allowed_hosts: vec!["lms.example.com".into(), "*.googleapis.com".into()],
            http_hosts: vec!["lms.internal".into()],
            allow_loopback_http: false,
        };
        let cases: &[(&EndpointPolicy, &str, Option<&str>)] = &[
            (&open, "https://lms.example.com/api/v1", None),
            (&open, "http://127.0.0.1:8081/api/v1", None),
            (&open, "http://localhost:8081/api/v1", None),
            (&open, "http://lms.example.com/api/v1", Some("plain http")),
            (
                &open,
                "https://169.254.169.254/latest/meta-data",
                Some("link-local"),
            ),
            (
                &open,
                "http://169.254.169.254/latest/meta-data",
                Some("link-local"),
            ),
            (&open, "https://[fe80::1]/", Some("link-local")),
            (&open, "https://[fd00:ec2::254]/", Some("link-local")),
            (
                &open,
                "https://[::ffff:169.254.169.254]/",
                Some("link-local"),
            ),
            (
                &open,
                "https://metadata.google.internal/computeMetadata/v1",
                Some("link-local"),
            ),
            (&open, "https://0.0.0.0/", Some("link-local")),
            (&open, "ftp://lms.example.com/", Some("not an absolute")),
            (&strict, "https://lms.example.com/api/v1", None),
            (&strict, "https://www.googleapis.com/calendar/v3", None),
            (
                &strict,
                "https://evil.example.net/",
                Some("not among the operator's allowed"),
            ),
            (&strict, "http://127.0.0.1:8081/", Some("plain http")),
            (
                &strict,
                "http://lms.internal/api",
                Some("not among the operator's allowed"),
            ),
        ];
        for (policy, endpoint, refusal) in cases {
            let got = policy.check("learningPlatform.endpoint", &url(endpoint));
            match refusal {
                None => assert_eq!(got, Ok(()), "{endpoint}"),
                Some(text) => {
                    let message = got.expect_err(endpoint).to_string();
                    assert!(message.contains(text), "{endpoint}: {message}");
                    assert!(
                        message.starts_with("learningPlatform.endpoint"),
                        "{message}"
                    );
                }
            }
        }
    }

    #[test]
    fn addresses_after_resolution() {
        assert!(
            permitted("10.0.0.7".parse().unwrap()),
            "in-cluster services are fine"
        );
        assert!(permitted("127.0.0.1".parse().unwrap()));
        assert!(!permitted("169.254.169.254".parse().unwrap()));
        assert!(!permitted("169.254.0.1".parse().unwrap()));
        assert!(!permitted("fe80::1".parse().unwrap()));
        assert!(!permitted("::".parse().unwrap()));
    }

    #[tokio::test]
    async fn the_resolver_keeps_what_may_be_called() {
        let addrs: Vec<SocketAddr> = GuardedResolver
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
