//! `lpc rules`: rule-file tools (`lpc rules check`).

use anyhow::{bail, Result};
use clap::Subcommand;
use std::path::PathBuf;

/// Arguments of `lpc rules`.
#[derive(clap::Args)]
pub struct RulesArgs {
    /// The rules tool to run.
    #[command(subcommand)]
    pub cmd: RulesCmd,
}

/// The subcommands of `lpc rules`.
#[derive(Subcommand)]
pub enum RulesCmd {
    /// Check every rule by running both sides through lpc-ref on the matches in its cases.
    Check {
        /// Rule file or folder.
        file: PathBuf,
        /// Case file (default: the .lir beside the rule file).
        #[arg(long)]
        cases: Option<PathBuf>,
    },
}

/// Runs `lpc rules check`: prints the report, fails when a rule failed.
pub fn run(a: &RulesArgs) -> Result<()> {
    let RulesCmd::Check { file, cases } = &a.cmd;
    let r = lpc_fold::rules_check(file, cases.as_deref())?;
    print!("{}", r.text);
    if !r.ok {
        bail!("{}: some rules failed the check", file.display());
    }
    Ok(())
}
