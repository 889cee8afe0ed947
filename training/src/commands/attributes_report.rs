//! `attributes-report`: export the attribute predictor and write its accuracy table.

use std::path::PathBuf;

use anyhow::Result;
use faceenhance_train::eval::attributes::export_and_report;
use faceenhance_train::nets::attributes::AttrConfig;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    table: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let cfg = AttrConfig::load(&a.config)?;
    let md = export_and_report(&cfg, &a.out)?;
    std::fs::write(&a.table, &md)?;
    print!("{md}");
    Ok(())
}
