//! The typed client of the searcher nodes' internal RPC ([`NodeClient`]) and its error
//! ([`RpcError`]).
//!
//! The client is deliberately thin: one pooled keep-alive HTTP/1.1 connection set per
//! node, bincode frames from [`shard_proto::wire`], and errors sorted into the kinds the
//! front-end's failover policy needs (connect / timeout → try another replica; status →
//! the node answered and refused; decode / body → the answer was unusable). Per-call
//! timeouts, retries and hedging belong to the caller's tower layers.

mod client;
mod resolve;

pub use client::NodeClient;

/// Why an RPC to a node failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// No connection could be made, or it broke before an answer arrived (node down,
    /// refused, reset).
    #[error("connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// Connecting took longer than the client's connect timeout.
    #[error("connect to {addr} timed out")]
    Timeout { addr: String },
    /// The node answered with a non-200 status and this message.
    #[error("node answered {0}: {1}")]
    Status(u16, String),
    /// The node's answer is not a valid frame of the expected message.
    #[error("undecodable answer: {0}")]
    Decode(String),
    /// The request or the answer's body could not be produced or read in full.
    #[error("body: {0}")]
    Body(String),
}

impl RpcError {
    /// Whether another replica might succeed where this attempt failed: transport
    /// failures and server-side (5xx) errors, not requests the node refused as bad.
    pub fn is_retryable(&self) -> bool {
        match self {
            RpcError::Connect { .. } | RpcError::Timeout { .. } | RpcError::Body(_) => true,
            RpcError::Status(code, _) => *code >= 500,
            RpcError::Decode(_) => false,
        }
    }
}
