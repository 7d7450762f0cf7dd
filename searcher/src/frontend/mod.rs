//! PLACEHOLDER (frontend engineer replaces)
#[derive(Debug, clap::Args)]
pub struct FrontendArgs {}

pub fn run_cli(_args: FrontendArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
