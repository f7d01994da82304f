//! `facehub admin`: the admin console's password.

use std::io::Write;

use clap::Subcommand;

use super::user_err;
use crate::domain::Core;

#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Set the administrator password of the console (read from standard
    /// input, at least 12 characters); ends every console session
    Passwd,
}

pub(super) async fn run(core: &Core, cmd: AdminCmd, out: &mut impl Write) -> anyhow::Result<()> {
    let AdminCmd::Passwd = cmd;
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprint!("New administrator password (input is shown): ");
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    core.set_admin_password(password).await.map_err(user_err)?;
    writeln!(out, "administrator password set; open /admin to log in")?;
    Ok(())
}
