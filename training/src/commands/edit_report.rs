//! `edit-report`: export the attribute editor, measure its edits and write a grid.

use std::path::PathBuf;

use anyhow::Result;
use faceenhance_train::eval::edit::export_and_report;
use faceenhance_train::train::edit::EditConfig;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    table: PathBuf,
    #[arg(long)]
    grid: PathBuf,
    /// Faces (columns) in the grid.
    #[arg(long, default_value_t = 8)]
    grid_faces: usize,
    /// Take the grid's faces from this cache's validation split instead.
    #[arg(long)]
    grid_cache: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let cfg = EditConfig::load(&a.config)?;
    let md = export_and_report(&cfg, &a.out, &a.grid, a.grid_faces, a.grid_cache.as_deref())?;
    std::fs::write(&a.table, &md)?;
    print!("{md}");
    Ok(())
}
