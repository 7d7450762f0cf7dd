//! PLACEHOLDER (demo engineer replaces)
#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

pub fn run_cli(_args: DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
