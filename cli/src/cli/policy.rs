//! `daf policy`: check policy files (syntax and, with a dictionary,
//! validity) and dump them fully merged as YAML or PAF.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use daf_base::policy::{Dictionary, PolicyError};
use daf_base::Policy;

use super::CliError;

/// Arguments of `daf policy`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PolicyCommand,
}

/// The `daf policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Parse a policy file (PAF or YAML, includes resolved) and, with
    /// --dictionary, validate it. Prints every problem with its location;
    /// exits with status 1 if there is any.
    Check {
        /// The policy file (.paf, .yaml or .yml).
        file: PathBuf,
        /// A dictionary to validate against.
        #[arg(long, value_name = "DICT")]
        dictionary: Option<PathBuf>,
    },
    /// Print the fully merged policy (includes resolved; with --dictionary,
    /// the dictionary's defaults merged in).
    Dump {
        /// The policy file (.paf, .yaml or .yml).
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = DumpFormat::Yaml)]
        format: DumpFormat,
        /// A dictionary whose defaults fill the names the policy lacks.
        #[arg(long, value_name = "DICT")]
        dictionary: Option<PathBuf>,
    },
}

/// Output formats of `daf policy dump`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DumpFormat {
    /// YAML.
    Yaml,
    /// LSST's PAF.
    Paf,
}

fn load_dictionary(path: &Path) -> Result<Dictionary, CliError> {
    Dictionary::load(path).map_err(|e| CliError::new(format!("dictionary {}: {e}", path.display())))
}

/// Runs `daf policy`.
pub fn run(args: PolicyArgs) -> Result<(), CliError> {
    match args.command {
        PolicyCommand::Check { file, dictionary } => check(&file, dictionary.as_deref()),
        PolicyCommand::Dump {
            file,
            format,
            dictionary,
        } => dump(&file, format, dictionary.as_deref()),
    }
}

fn check(file: &Path, dictionary: Option<&Path>) -> Result<(), CliError> {
    let dict = dictionary.map(load_dictionary).transpose()?;
    let shown = file.display();
    let policy = match Policy::load(file) {
        Ok(p) => p,
        Err(e) => {
            // Syntax errors already name file and line.
            println!("{}", located(file, &e));
            return Err(CliError::new(format!("{shown}: 1 problem")));
        }
    };
    let count = count_parameters(policy.as_property_set());
    match dict {
        None => {
            println!("{shown}: OK ({count} parameters)");
            Ok(())
        }
        Some(d) => match policy.validate(&d) {
            Ok(()) => {
                println!(
                    "{shown}: OK ({count} parameters, valid against {})",
                    dictionary.expect("given").display()
                );
                Ok(())
            }
            Err(v) => {
                let mut out = std::io::stdout().lock();
                for p in &v.problems {
                    let _ = writeln!(out, "{shown}: {}: {} {}", p.name, p.code, p.detail);
                }
                Err(CliError::new(format!(
                    "{shown}: {} problem(s)",
                    v.problems.len()
                )))
            }
        },
    }
}

/// Leaf parameters in every sub-policy (all elements of repeated blocks).
fn count_parameters(ps: &daf_base::PropertySet) -> usize {
    ps.iter()
        .map(|(_, v)| match v {
            daf_base::Values::PropertySet(sets) => sets.iter().map(count_parameters).sum(),
            _ => 1,
        })
        .sum()
}

/// An error message that starts with a location.
fn located(file: &Path, e: &PolicyError) -> String {
    match e {
        PolicyError::Syntax { .. }
        | PolicyError::Io { .. }
        | PolicyError::Unsupported { .. }
        | PolicyError::Include { .. } => e.to_string(),
        _ => format!("{}: {e}", file.display()),
    }
}

fn dump(file: &Path, format: DumpFormat, dictionary: Option<&Path>) -> Result<(), CliError> {
    let mut policy = Policy::load(file).map_err(|e| CliError::new(located(file, &e)))?;
    if let Some(d) = dictionary {
        policy
            .merge_defaults(&load_dictionary(d)?)
            .map_err(|e| CliError::new(e.to_string()))?;
    }
    let text = match format {
        DumpFormat::Yaml => policy.to_yaml_string(),
        DumpFormat::Paf => policy.to_paf_string(),
    }
    .map_err(|e| CliError::new(format!("{}: {e}", file.display())))?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| CliError::new(format!("writing output: {e}")))
}
