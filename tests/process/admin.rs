//! The admin commands the process tests run on a data directory, beyond
//! those both test binaries share (`common::process`).

use std::process::Command;

/// `cmd` made `person add` of `user_id` named `name` to tenant `acme`;
/// add further options (`--employee-no`) to it.
pub fn person_add<'a>(cmd: &'a mut Command, user_id: &str, name: &str) -> &'a mut Command {
    cmd.args(["person", "add", "--tenant", "acme"])
        .args(["--user-id", user_id, "--name", name])
}
