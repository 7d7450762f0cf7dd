//! PLACEHOLDER (bench engineer replaces)
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

pub fn run_cli(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
#[derive(Debug, clap::Args)]
pub struct BaselineArgs {}

pub fn run_baseline_cli(_args: BaselineArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
