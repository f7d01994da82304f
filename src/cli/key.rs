//! `facehub key`: rotate and re-seal the data directory's encryption key,
//! or print a new one.

use std::io::Write;

use clap::Subcommand;

use crate::domain::Core;

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Generate a new data key, re-seal every blob and sealed value under
    /// it, and retire the old key from the key file. Safe while a server
    /// runs on the same directory: it takes up the new key within a second.
    Rotate {
        #[arg(long)]
        json: bool,
    },
    /// Re-seal every blob and sealed value still under an older key with
    /// the current one, and report what is left under older keys. For
    /// nodes sharing `encryption_key`: once every node has the new key as
    /// `encryption_key` (the old one in `decryption_keys`), this moves the
    /// data off the old key, which may then leave the configuration.
    Reseal {
        #[arg(long)]
        json: bool,
    },
    /// Print a new random data key (base64), for `encryption_key` /
    /// `decryption_keys`; touches nothing
    New {
        #[arg(long)]
        json: bool,
    },
}

/// `key new`, which needs no data directory.
pub(super) fn print_new(json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let line = crate::crypto::new_key_line();
    let id = crate::crypto::key_id_hex(crate::crypto::Key::from_base64(&line)?.id());
    if json {
        let v = serde_json::json!({"key": line, "key_id": id});
        writeln!(out, "{v}")?;
    } else {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

pub(super) async fn run(core: &Core, cmd: KeyCmd, out: &mut impl Write) -> anyhow::Result<()> {
    let (rotate, json) = match cmd {
        KeyCmd::Rotate { json } => (true, json),
        KeyCmd::Reseal { json } => (false, json),
        KeyCmd::New { .. } => unreachable!("handled by run"),
    };
    let r = if rotate {
        core.rotate_key(std::time::Duration::from_secs(2)).await?
    } else {
        core.reseal_keys().await?
    };
    if json {
        writeln!(out, "{}", serde_json::to_string(&r)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} {}: re-sealed {} blobs and {} values; retired {}",
        if rotate { "new key" } else { "key" },
        r.key_id,
        r.blobs_resealed,
        r.values_resealed,
        if r.retired.is_empty() {
            "none".to_string()
        } else {
            r.retired.join(", ")
        }
    )?;
    if r.retire_at_restart {
        writeln!(
            out,
            "a server is running: the old key stays in the key file until it \
             restarts (it may be finishing uploads under it), and is retired then"
        )?;
    } else if r.remaining > 0 {
        writeln!(
            out,
            "{} items are still under an older key (a node still sealing under \
             it?): run key reseal again once every node has the current key",
            r.remaining
        )?;
    } else if !rotate {
        writeln!(out, "nothing is sealed under an older key")?;
    }
    Ok(())
}
