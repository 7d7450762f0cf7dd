//! Name resolution with a time limit, for the RPC client's connector.
//!
//! hyper-util's `HttpConnector` bounds each TCP connect by its connect timeout but not the
//! DNS lookup before it. A lookup can hang for seconds: Docker's embedded DNS, asked for a
//! container that was just killed, forwards the name upstream, and without a reachable
//! upstream nobody answers. The attempt timeout then fires instead, and the front-end takes
//! a dead node for a slow one (kept as a last resort, see `frontend/nodes.rs`). Bounding
//! the lookup by the connect timeout makes it fail as what it is: the node cannot be
//! reached.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use tower::Service;

/// A resolver (the system's: `getaddrinfo` on the blocking pool) given up on after
/// `limit`, with a `TimedOut` error (how a connect timeout is reported too).
#[derive(Clone, Debug)]
pub struct BoundedResolver<R = GaiResolver> {
    inner: R,
    limit: Duration,
}

impl BoundedResolver {
    /// The system resolver, bounded by `limit`.
    pub fn system(limit: Duration) -> Self {
        BoundedResolver {
            inner: GaiResolver::new(),
            limit,
        }
    }
}

type Lookup<A> = Pin<Box<dyn Future<Output = io::Result<A>> + Send>>;

impl<R> Service<Name> for BoundedResolver<R>
where
    R: Service<Name, Error = io::Error>,
    R::Future: Send + 'static,
{
    type Response = R::Response;
    type Error = io::Error;
    type Future = Lookup<R::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let limit = self.limit;
        let host = name.as_str().to_string();
        let lookup = self.inner.call(name);
        Box::pin(async move {
            match tokio::time::timeout(limit, lookup).await {
                Ok(addrs) => addrs,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("resolving {host} took longer than {limit:?}"),
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    #[tokio::test]
    async fn a_name_resolves_within_the_limit() {
        let mut resolver = BoundedResolver::system(Duration::from_secs(5));
        let name: Name = "localhost".parse().expect("a valid name");
        let addrs: Vec<_> = resolver
            .call(name)
            .await
            .expect("localhost resolves")
            .collect();
        assert!(addrs.iter().any(|a| a.ip().is_loopback()), "{addrs:?}");
    }

    /// A resolver that never answers, like a DNS server that forwards and never hears back.
    #[derive(Clone)]
    struct Silent;

    impl Service<Name> for Silent {
        type Response = std::vec::IntoIter<SocketAddr>;
        type Error = io::Error;
        type Future = Lookup<Self::Response>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Name) -> Self::Future {
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lookup_that_never_ends_is_a_timeout_after_the_limit() {
        let limit = Duration::from_millis(250);
        let mut resolver = BoundedResolver {
            inner: Silent,
            limit,
        };
        let name: Name = "search-2".parse().expect("a valid name");
        let started = tokio::time::Instant::now();
        let error = resolver.call(name).await.expect_err("gave up");
        assert_eq!(started.elapsed(), limit);
        assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
        assert!(error.to_string().contains("resolving search-2"), "{error}");
    }
}
