//! `tango completions SHELL` and `tango man`: shell completion scripts and man pages,
//! generated from the CLI's own definition (clap_complete, clap_mangen) so they cannot
//! drift from it. Packagers run these at build time; see README.md.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(clap::Args)]
pub(crate) struct ManArgs {
    /// Write tango.1 and a page per command (tango-run.1, ...) into DIR instead of
    /// printing tango.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Write to stdout, ignoring a closed pipe (`tango man | head` must not panic).
fn out(bytes: &[u8]) {
    let _ = std::io::stdout().lock().write_all(bytes);
}

pub(crate) fn completions(args: CompletionsArgs, mut cmd: clap::Command) -> ExitCode {
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "tango", &mut buf);
    out(&buf);
    ExitCode::SUCCESS
}

pub(crate) fn man(args: ManArgs, cmd: clap::Command) -> ExitCode {
    match args.dir {
        None => {
            let mut buf = Vec::new();
            match clap_mangen::Man::new(cmd).render(&mut buf) {
                Ok(()) => {
                    out(&buf);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: rendering the man page: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(dir) => match clap_mangen::generate_to(cmd, &dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: writing man pages to {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
    }
}
