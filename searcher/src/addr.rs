//! Node identity and addresses: a node *is* its stable `id`; its RPC address is a
//! `host:port` ([`NodeAddr`]) that may be a host name (a container's, a Kubernetes pod's
//! DNS name), resolved each time a connection is made, so a node restarted at a new IP is
//! found again without touching any file. Placement hashes ids only (`placement.rs`), so
//! an address can change without moving a byte.
//!
//! A cluster file may list nodes one by one (`[[node]]`) or by a pattern
//! (`[[node_set]]`, [`NodeSet`]): `id = "search-{i}"`, `rpc = "search-{i}.search:7000"`,
//! `count = N` expand at load into N nodes, so scaling the cluster is one number.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A node's RPC address: a host (name or IP literal; IPv6 in brackets) and a port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeAddr {
    host: String,
    port: u16,
}

impl NodeAddr {
    /// The host part (without brackets for IPv6).
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The socket address, if the host is an IP literal (no resolution needed).
    pub fn as_socket_addr(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.host.parse().ok()?;
        Some(SocketAddr::new(ip, self.port))
    }

    /// Resolves the host now (DNS for a name): every address it has, in resolver order.
    pub async fn resolve(&self) -> std::io::Result<Vec<SocketAddr>> {
        if let Some(addr) = self.as_socket_addr() {
            return Ok(vec![addr]);
        }
        Ok(tokio::net::lookup_host((self.host.as_str(), self.port))
            .await?
            .collect())
    }
}

impl From<SocketAddr> for NodeAddr {
    fn from(addr: SocketAddr) -> Self {
        NodeAddr {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host.contains(':') {
            true => write!(f, "[{}]:{}", self.host, self.port),
            false => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

impl From<NodeAddr> for String {
    fn from(addr: NodeAddr) -> String {
        addr.to_string()
    }
}

impl TryFrom<String> for NodeAddr {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl FromStr for NodeAddr {
    type Err = String;

    /// `host:port`, `[v6]:port`; the error says what is wrong and shows the text.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("{text:?} is not a host:port address: {why}");
        let (host, port) = text.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let port: u16 = port.parse().map_err(|_| bad("the port is not a number"))?;
        if port == 0 {
            return Err(bad("port 0"));
        }
        let host = match host.strip_prefix('[') {
            Some(inner) => {
                let inner = inner.strip_suffix(']').ok_or_else(|| bad("unclosed ["))?;
                inner
                    .parse::<std::net::Ipv6Addr>()
                    .map_err(|_| bad("not an IPv6 address in [ ]"))?;
                inner
            }
            None => host,
        };
        if host.parse::<IpAddr>().is_err() && !is_host_name(host) {
            return Err(bad("the host is neither an IP address nor a DNS name"));
        }
        if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()) {
            return Err(bad(
                "an unspecified address (0.0.0.0, ::) cannot be connected to",
            ));
        }
        Ok(NodeAddr {
            host: host.to_string(),
            port,
        })
    }
}

/// A DNS name: dot-separated labels of letters, digits, `-` and `_`, none empty, at most
/// 253 characters (so a typo like `host;7000` or a URL is refused at load, not at connect).
fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `[[node_set]]`: nodes described by a pattern, `{i}` standing for 0, 1, … `count - 1`
/// (plus `start`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSet {
    /// Node id pattern; must contain `{i}`.
    pub id: String,
    /// RPC address pattern, e.g. `search-{i}.search:7000`.
    pub rpc: String,
    pub count: u32,
    /// First index (default 0, as a Kubernetes StatefulSet numbers its pods).
    #[serde(default)]
    pub start: u32,
    /// Listen address pattern (see `NodeConfig::listen`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Data directory pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    /// Public API address pattern (see `NodeConfig::http`), e.g. `search-{i}.search:8080`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// Public API listen address pattern (see `NodeConfig::http_listen`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_listen: Option<String>,
}

/// One node a [`NodeSet`] expands into.
#[derive(Clone, Debug, PartialEq)]
pub struct Expanded {
    pub id: String,
    pub rpc: NodeAddr,
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub http: Option<NodeAddr>,
    pub http_listen: Option<SocketAddr>,
}

impl NodeSet {
    /// The nodes of the set, in index order; an error names the set and what is wrong.
    pub fn expand(&self) -> Result<Vec<Expanded>, String> {
        let which = format!("node_set {:?}", self.id);
        if !self.id.contains("{i}") {
            return Err(format!("{which}: id must contain {{i}}"));
        }
        if self.count == 0 {
            return Err(format!("{which}: count must be > 0"));
        }
        let end = self
            .start
            .checked_add(self.count)
            .ok_or_else(|| format!("{which}: start + count overflows"))?;
        (self.start..end)
            .map(|i| -> Result<Expanded, String> {
                let fill = |pattern: &str| pattern.replace("{i}", &i.to_string());
                let rpc = fill(&self.rpc)
                    .parse()
                    .map_err(|e| format!("{which}: rpc: {e}"))?;
                let socket = |name: &str, pattern: &Option<String>| match pattern {
                    Some(p) => fill(p)
                        .parse::<SocketAddr>()
                        .map(Some)
                        .map_err(|e| format!("{which}: {name} {:?}: {e}", fill(p))),
                    None => Ok(None),
                };
                let http = match &self.http {
                    Some(p) => Some(
                        fill(p)
                            .parse::<NodeAddr>()
                            .map_err(|e| format!("{which}: http: {e}"))?,
                    ),
                    None => None,
                };
                Ok(Expanded {
                    id: fill(&self.id),
                    rpc,
                    listen: socket("listen", &self.listen)?,
                    data_dir: self.data_dir.as_deref().map(|p| PathBuf::from(fill(p))),
                    http,
                    http_listen: socket("http_listen", &self.http_listen)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_names_and_literals_and_print_back() {
        for text in [
            "127.0.0.1:7000",
            "search-3.search.default.svc.cluster.local:7000",
            "localhost:1",
            "[::1]:7000",
            "node_a:80",
        ] {
            let addr: NodeAddr = text.parse().unwrap();
            assert_eq!(addr.to_string(), text);
        }
        let v6: NodeAddr = "[::1]:7000".parse().unwrap();
        assert_eq!(v6.host(), "::1");
        assert_eq!(v6.as_socket_addr(), Some("[::1]:7000".parse().unwrap()));
        let name: NodeAddr = "search-0.search:7000".parse().unwrap();
        assert_eq!((name.host(), name.port()), ("search-0.search", 7000));
        assert_eq!(name.as_socket_addr(), None);
    }

    #[test]
    fn bad_addresses_say_why() {
        for (text, why) in [
            ("search-0", "no port"),
            ("search-0:http", "not a number"),
            ("search-0:0", "port 0"),
            ("search-0:70000", "not a number"),
            ("0.0.0.0:7000", "unspecified"),
            ("[::]:7000", "unspecified"),
            ("http://a:7000", "neither"),
            ("a..b:7000", "neither"),
            (":7000", "neither"),
            ("[::1:7000", "unclosed"),
        ] {
            let err = text.parse::<NodeAddr>().unwrap_err();
            assert!(err.contains(why) && err.contains(text), "{text}: {err}");
        }
    }

    #[tokio::test]
    async fn names_resolve_when_asked() {
        let addr: NodeAddr = "localhost:7000".parse().unwrap();
        let resolved = addr.resolve().await.unwrap();
        assert!(resolved
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 7000));
        assert!(!resolved.is_empty());
    }

    #[test]
    fn a_node_set_expands_its_patterns() {
        let set = NodeSet {
            id: "search-{i}".into(),
            rpc: "search-{i}.search:7000".into(),
            count: 3,
            start: 0,
            listen: Some("0.0.0.0:7000".into()),
            data_dir: Some("/var/lib/ws/{i}".into()),
            http: Some("search-{i}.search:8080".into()),
            http_listen: None,
        };
        let nodes = set.expand().unwrap();
        assert_eq!(
            nodes[1].http.as_ref().map(ToString::to_string).as_deref(),
            Some("search-1.search:8080")
        );
        let ids: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["search-0", "search-1", "search-2"]);
        assert_eq!(nodes[2].rpc.to_string(), "search-2.search:7000");
        assert_eq!(nodes[1].listen, Some("0.0.0.0:7000".parse().unwrap()));
        assert_eq!(nodes[1].data_dir, Some(PathBuf::from("/var/lib/ws/1")));
        let no_index = NodeSet {
            id: "search".into(),
            ..set.clone()
        };
        assert!(no_index.expand().unwrap_err().contains("{i}"));
        let bad_rpc = NodeSet {
            rpc: "search-{i}".into(),
            ..set
        };
        assert!(bad_rpc.expand().unwrap_err().contains("no port"));
    }
}
