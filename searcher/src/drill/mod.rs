//! PLACEHOLDER (drill engineer replaces)
#[derive(Debug, clap::Args)]
pub struct DrillArgs {}

pub fn run_cli(_args: DrillArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
