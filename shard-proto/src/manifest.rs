//! Shard manifests: being written by the indexer engineer.
