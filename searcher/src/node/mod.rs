//! PLACEHOLDER (node engineer replaces)
#[derive(Debug, clap::Args)]
pub struct NodeArgs {}

pub fn run_cli(_args: NodeArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
