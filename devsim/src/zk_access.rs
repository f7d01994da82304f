//! The simulated terminal as an access terminal of PUSH 3.x ("security"
//! firmware, `DeviceType=acc`), as the protocol notes and the servers
//! that drive such terminals describe it: it registers
//! (`/iclock/registry`, its capabilities comma-separated, a comma inside
//! one value as real firmware sends its vendor name) and keeps the
//! `RegistryCode`, fetches its settings (`/iclock/push`), posts its events
//! as `rtlog` (`key=value` fields; door events of no person, `pin=0`,
//! among the punches) and its templates as `tabledata` (lower-case
//! `biodata` lines, taken only when answered `biodata=<count>`), and reads
//! only the lower-case tables in commands (`user`, `biodata`, `biophoto`;
//! -1004 for any other, as firmware answers a table it lacks).

use anyhow::{Context, bail};

use crate::zk::ZkTerminal;

impl ZkTerminal {
    /// An access terminal pointed at `base`.
    pub fn new_access(base: &str, sn: &str) -> ZkTerminal {
        let mut t = ZkTerminal::new(base, sn);
        t.access = true;
        t
    }

    /// Registers: posts its kind, firmware and capabilities to
    /// `/iclock/registry` and keeps the `RegistryCode` of an answer that
    /// has one. The answer.
    pub async fn register(&mut self) -> anyhow::Result<(u16, String)> {
        let mut pairs = vec![
            "DeviceType=acc".to_string(),
            "FirmVer=ZAM180-Ver1.1.17".into(),
            "PushVersion=3.1.2".into(),
            "~OEMVendor=ZKTECO CO., LTD.".into(),
            "LockCount=1".into(),
        ];
        pairs.extend(self.capabilities());
        let (status, body) = self
            .post(
                &format!("/iclock/registry?SN={}", self.sn),
                pairs.join(",").into_bytes(),
            )
            .await?;
        if status == 200 {
            self.registry_code = body
                .lines()
                .find_map(|l| l.strip_prefix("RegistryCode="))
                .map(str::to_string);
        }
        Ok((status, body))
    }

    /// Fetches its settings (`/iclock/push`) into its options. Fails
    /// unless they are `key=value` lines with a `SessionID`.
    pub async fn fetch_settings(&mut self) -> anyhow::Result<()> {
        let (status, body) = self
            .post(&format!("/iclock/push?SN={}", self.sn), Vec::new())
            .await?;
        if status != 200 {
            bail!("settings refused: {status} {body:?}");
        }
        for line in body.lines() {
            let (k, v) = line
                .split_once('=')
                .with_context(|| format!("a setting that is not key=value: {line:?}"))?;
            self.options.insert(k.to_string(), v.to_string());
        }
        self.options.get("SessionID").context("no SessionID")?;
        Ok(())
    }

    /// Posts its unsent punches as `rtlog` events, each after a door event
    /// of no person (`pin=0`); they are dropped from the log only on an
    /// `OK`. The answer.
    pub(crate) async fn upload_events(&mut self) -> anyhow::Result<(u16, String)> {
        let mut body = String::new();
        for (i, p) in self.unsent.iter().enumerate() {
            let time = self.wall_clock(p.at);
            body.push_str(&format!(
                "time={time}\tpin=0\tcardno=0\teventaddr=1\tevent=200\tinoutstatus=2\t\
                 verifytype=200\tindex={}\tsitecode=0\tlinkid=0\tmaskflag=0\r\n\
                 time={time}\tpin={}\tcardno=0\teventaddr=1\tevent=0\tinoutstatus={}\t\
                 verifytype={}\tindex={}\tsitecode=0\tlinkid=0\tmaskflag=0\r\n",
                2 * i,
                p.pin,
                p.state,
                p.verify,
                2 * i + 1
            ));
        }
        let (status, answer) = self
            .post(
                &format!("/iclock/cdata?SN={}&table=rtlog&Stamp=9999", self.sn),
                body.into_bytes(),
            )
            .await?;
        if status == 200 && answer.starts_with("OK") {
            self.unsent.clear();
        }
        Ok((status, answer))
    }

    /// Posts records of one of its tables (`tabledata`), given as
    /// attendance-style lines (`BIODATA Pin=…`) and sent as an access
    /// terminal writes them (`biodata pin=…`). Fails unless answered
    /// `<table>=<count>`, which is what tells firmware they are taken.
    pub(crate) async fn post_table(
        &mut self,
        table: &str,
        lines: &[String],
    ) -> anyhow::Result<(u16, String)> {
        let body: String = lines.iter().map(|l| lower_case(l)).collect();
        let (status, answer) = self
            .post(
                &format!(
                    "/iclock/cdata?SN={}&table=tabledata&tablename={table}&count={}",
                    self.sn,
                    lines.len()
                ),
                body.into_bytes(),
            )
            .await?;
        if status == 200 && answer.trim_end() != format!("{table}={}", lines.len()) {
            bail!("{table} not acknowledged with its count: {answer:?}");
        }
        Ok((status, answer))
    }

    /// The table a command names, as the attendance dialect's word; the
    /// result code of a table this terminal does not have.
    pub(crate) fn table<'a>(&self, table: &'a str) -> Result<&'a str, i64> {
        match (self.access, table) {
            (false, t) => Ok(t),
            (true, "user") => Ok("USERINFO"),
            (true, "biodata") => Ok("BIODATA"),
            (true, "biophoto") => Ok("BIOPHOTO"),
            (true, _) => Err(-1004),
        }
    }
}

/// A line with its tag and keys in lower case (`BIODATA Pin=1\tNo=0` →
/// `biodata pin=1\tno=0`), as an access terminal writes its tables.
fn lower_case(line: &str) -> String {
    let (tag, rest) = line.split_once(' ').unwrap_or(("", line));
    let fields: Vec<String> = rest
        .split('\t')
        .map(|f| match f.split_once('=') {
            Some((k, v)) => format!("{}={v}", k.to_ascii_lowercase()),
            None => f.to_string(),
        })
        .collect();
    format!("{} {}", tag.to_ascii_lowercase(), fields.join("\t"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_in_lower_case() {
        assert_eq!(
            lower_case("BIODATA Pin=1\tNo=0\tTmp=AAEC==\n"),
            "biodata pin=1\tno=0\ttmp=AAEC==\n"
        );
    }

    #[test]
    fn an_access_terminal_reads_its_own_tables() {
        let t = ZkTerminal::new_access("http://127.0.0.1:1", "A1");
        assert_eq!(t.table("user"), Ok("USERINFO"));
        assert_eq!(t.table("biophoto"), Ok("BIOPHOTO"));
        assert_eq!(t.table("USERINFO"), Err(-1004));
        let t = ZkTerminal::new("http://127.0.0.1:1", "B1");
        assert_eq!(t.table("USERINFO"), Ok("USERINFO"));
    }
}
