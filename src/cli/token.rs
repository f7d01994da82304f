//! `facehub token`: issue access tokens without the app secret.

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use super::user_err;
use crate::domain::{Core, TokenKind};

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Print a tenant_access_token for an app
    Tenant {
        /// The app (cli_…) to issue the token for
        #[arg(long)]
        app_id: String,
    },
    /// Print a user_access_token (u-…) acting for one person of the app's
    /// tenant, valid for token_ttl_secs
    User {
        /// The app (cli_…) the person acts through
        #[arg(long)]
        app_id: String,
        /// The person's user_id
        #[arg(long)]
        user_id: String,
    },
}

pub(super) async fn run(core: &Core, cmd: TokenCmd, out: &mut impl Write) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Tenant { app_id } => {
            let app = core
                .app(&app_id)
                .await?
                .with_context(|| format!("no app {app_id}"))?;
            let t = core
                .token_for(&app, TokenKind::Tenant)
                .await
                .map_err(user_err)?;
            writeln!(
                out,
                "{}",
                json!({"tenant_access_token": t.token, "expire": t.expire})
            )?;
        }
        TokenCmd::User { app_id, user_id } => {
            let t = core
                .issue_user_token(&app_id, &user_id)
                .await
                .map_err(user_err)?;
            writeln!(
                out,
                "{}",
                json!({"access_token": t.token, "token_type": "Bearer", "expires_in": t.expire})
            )?;
        }
    }
    Ok(())
}
