//! `indexer generations`: list the index generations of a shard store, switch the live
//! one, roll it back (see `shard_proto::generation` for the layout and the alias).
//!
//! Every command is idempotent and safe to rerun after a crash: a switch writes the one
//! alias atomically, so it is either done or not, and a switch to the live generation
//! changes nothing. A switch refuses a generation that is missing or incomplete. Nodes and
//! front-ends follow the alias on their own (`[generations] poll_ms`).

use clap::{Args, Subcommand};
use shard_proto::generation::{self, Switched};
use shard_proto::store::{ShardStore, StoreLocation};

/// Flags of `indexer generations`.
#[derive(Debug, Args)]
pub struct GenerationsArgs {
    /// The shard store: a directory or `s3://bucket/prefix` (endpoint, region and
    /// credentials from the AWS_* environment variables).
    #[arg(long)]
    pub store: String,
    #[command(subcommand)]
    pub command: GenerationsCommand,
}

/// What to do with the store's generations.
#[derive(Debug, Subcommand)]
pub enum GenerationsCommand {
    /// Every generation of the store, its shards and whether it is complete; `*` marks
    /// the live one.
    List,
    /// Make generation ID live (refused if it is missing or incomplete).
    Switch { id: String },
    /// Make the generation live before the last switch live again (or --to ID).
    Rollback {
        #[arg(long)]
        to: Option<String>,
    },
}

/// Runs one `indexer generations` command.
pub fn run(args: &GenerationsArgs) -> anyhow::Result<()> {
    let location: StoreLocation = args.store.parse()?;
    let store = ShardStore::open(&location, &Default::default())?;
    match &args.command {
        GenerationsCommand::List => list(&store),
        GenerationsCommand::Switch { id } => report(generation::switch(&store, id)?),
        GenerationsCommand::Rollback { to } => report(generation::rollback(&store, to.as_deref())?),
    }
}

fn list(store: &ShardStore) -> anyhow::Result<()> {
    let live = generation::live(store)?;
    for id in generation::list(store)? {
        let mark = if id == live { "*" } else { " " };
        match generation::check_complete(store, &id) {
            Ok(manifests) => {
                let docs: u64 = manifests.iter().map(|m| m.docs).sum();
                println!("{mark} {id}\t{} shards\t{docs} documents", manifests.len());
            }
            Err(e) => println!("{mark} {id}\tincomplete: {e}"),
        }
    }
    Ok(())
}

fn report(switched: Switched) -> anyhow::Result<()> {
    match switched.from == switched.to {
        true => println!(
            "generation {} is already live ({} shards)",
            switched.to, switched.shards
        ),
        false => println!(
            "live generation: {} (was {}), {} shards",
            switched.to, switched.from, switched.shards
        ),
    }
    Ok(())
}
