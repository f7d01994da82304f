//! A simulated ZKTeco terminal speaking the PUSH protocol (`/iclock/*`)
//! as firmware does: the init that fetches its options (and sets its clock
//! zone from `TimeZone`, hours when small and minutes otherwise, as ZKTeco
//! firmware reads it), a punch log kept until the server answers `OK`
//! (anything else and the punches are sent again, with the next upload),
//! the `ATTLOGStamp` it resumes from, heartbeats with `INFO`, a user table
//! kept by the `DATA UPDATE|DELETE USERINFO` commands its polls bring, and
//! their results batched in one `devicecmd`. Its templates: enrolled on
//! it and uploaded (`FP`/`FACE` in `OPERLOG`, or `BIODATA` for a terminal
//! of the unified table), and kept by `DATA UPDATE|DELETE FINGERTMP|FACE|
//! BIODATA`; like firmware it refuses a template whose `Size` is not its
//! base64 length (-9), of a PIN it does not hold (-10), or, as `BIODATA`,
//! of an algorithm version other than its own (-30). A terminal that makes
//! templates from photos (`MultiBioPhotoSupport`) takes `DATA UPDATE
//! BIOPHOTO`: it "extracts" a template of its own version from the JPEG
//! (a digest of it, so the same photo makes the same template) and, when
//! asked by `PostBackTmpFlag=1`, posts it back as `BIODATA` after the
//! poll's results, as firmware does; a photo that is not a JPEG is
//! refused (-12).

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// What a terminal's algorithms are: its fingerprint and face versions
/// (`INFO`), and whether it takes the unified template table, with the
/// version of each biometric type it reports (`table=options`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Algorithms {
    /// `FPVersion`, e.g. `10`.
    pub fp: Option<String>,
    /// `FaceVersion`, e.g. `7`.
    pub face: Option<String>,
    /// `MultiBioVersion` by type (1 fingerprint, 2 face, 9 visible-light
    /// face), e.g. `[(9, "39.3")]`: a terminal of the unified table.
    pub multi: Vec<(i64, String)>,
    /// The types it makes templates of from photos
    /// (`MultiBioPhotoSupport`), e.g. `[9]`.
    pub photos: Vec<i64>,
}

/// A template the terminal holds: (PIN, type, slot).
pub type TemplateKey = (String, i64, i64);

/// One punch in the terminal's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPunch {
    pub pin: String,
    /// Unix time of the punch; written as the terminal's wall clock.
    pub at: i64,
    pub state: i64,
    pub verify: i64,
}

/// A terminal: its serial number, options, clock zone and punch log.
/// An access terminal (`ZkTerminal::access`) speaks the PUSH 3.x
/// dialect: see `zk_access`.
pub struct ZkTerminal {
    base: String,
    pub sn: String,
    http: reqwest::Client,
    /// The options of its last init, by name.
    pub options: BTreeMap<String, String>,
    /// Minutes east of UTC its clock is set to (from `TimeZone`).
    pub utc_offset_min: i64,
    /// Punches not yet acknowledged.
    pub unsent: Vec<LogPunch>,
    /// How many uploads it has made (its `Stamp` counts them).
    pub(crate) uploads: u64,
    /// Its users, by PIN: their names.
    pub users: BTreeMap<String, String>,
    /// Result codes to answer for commands naming these PINs (the command
    /// is then not carried out), as a full or failing terminal would.
    pub refuse: BTreeMap<String, i64>,
    /// Every command line it was sent, in order.
    pub received: Vec<String>,
    /// The length of each answer to a poll that carried commands.
    pub replies: Vec<usize>,
    /// Its algorithms.
    pub algorithms: Algorithms,
    /// Its templates: their version and bytes.
    pub templates: BTreeMap<TemplateKey, (String, Vec<u8>)>,
    /// The photos it was sent, in order: (PIN, type, JPEG).
    pub photos: Vec<(String, i64, Vec<u8>)>,
    /// `BIODATA` lines of templates made from photos, to post back.
    pub(crate) postback: Vec<String>,
    /// An access terminal (PUSH 3.x, `DeviceType=acc`): it registers, posts
    /// `rtlog` and `tabledata`, and reads tables named in lower case.
    pub access: bool,
    /// The `RegistryCode` its registration was answered with.
    pub registry_code: Option<String>,
}

impl ZkTerminal {
    /// A terminal pointed at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str, sn: &str) -> ZkTerminal {
        let http = reqwest::Client::builder()
            .user_agent("iClock Proxy/1.09")
            .build()
            .expect("an HTTP client");
        ZkTerminal {
            base: base.trim_end_matches('/').to_string(),
            sn: sn.to_string(),
            http,
            options: BTreeMap::new(),
            utc_offset_min: 0,
            unsent: Vec::new(),
            uploads: 0,
            users: BTreeMap::new(),
            refuse: BTreeMap::new(),
            received: Vec::new(),
            replies: Vec::new(),
            algorithms: Algorithms::default(),
            templates: BTreeMap::new(),
            photos: Vec::new(),
            postback: Vec::new(),
            access: false,
            registry_code: None,
        }
    }

    /// Points it at another address (the server moved, or restarted on
    /// another port), keeping all it holds.
    pub fn point_at(&mut self, base: &str) {
        self.base = base.trim_end_matches('/').to_string();
    }

    /// Whether it takes the unified template table (`BIODATA`).
    pub fn biodata(&self) -> bool {
        !self.algorithms.multi.is_empty()
    }

    /// The version it holds templates of `bio_type` in.
    pub fn version_of(&self, bio_type: i64) -> Option<String> {
        if self.biodata() {
            return self
                .algorithms
                .multi
                .iter()
                .find(|(t, _)| *t == bio_type)
                .map(|(_, v)| v.clone());
        }
        let v = match bio_type {
            1 => self.algorithms.fp.clone(),
            2 => self.algorithms.face.clone(),
            _ => None,
        }?;
        Some(if v.contains('.') { v } else { format!("{v}.0") })
    }

    /// Its `INFO` report: firmware, users, fingerprints, punches, address,
    /// fingerprint and face versions, faces an enrolment takes, faces,
    /// feature flags.
    pub fn info(&self) -> String {
        let count = |t: i64| self.templates.keys().filter(|k| k.1 == t).count();
        format!(
            "Ver 2.0.12-20250101,{},{},0,192.168.1.20,{},{},15,{},111",
            self.users.len(),
            count(1),
            self.algorithms.fp.as_deref().unwrap_or("0"),
            self.algorithms.face.as_deref().unwrap_or("0"),
            count(2) + count(9)
        )
    }

    /// Posts its options report (`table=options`): its versions and, for
    /// a terminal of the unified table, `MultiBioDataSupport` and
    /// `MultiBioVersion`.
    pub async fn report_options(&self) -> anyhow::Result<(u16, String)> {
        self.post(
            &format!("/iclock/cdata?SN={}&table=options", self.sn),
            self.capabilities().join(",").into_bytes(),
        )
        .await
    }

    /// Its name and algorithms as `key=value` pairs: what its options
    /// report and its registration say.
    pub(crate) fn capabilities(&self) -> Vec<String> {
        let mut pairs = vec!["~DeviceName=SimFace".to_string()];
        if let Some(v) = &self.algorithms.fp {
            pairs.push(format!("FPVersion={v}"));
        }
        if let Some(v) = &self.algorithms.face {
            pairs.push(format!("FaceVersion={v}"));
        }
        if self.biodata() {
            let mut support = ["0"; 11];
            let mut versions = vec!["0".to_string(); 11];
            for (t, v) in &self.algorithms.multi {
                support[*t as usize] = "1";
                versions[*t as usize] = v.clone();
            }
            pairs.push(format!("MultiBioDataSupport={}", support.join(":")));
            pairs.push(format!("MultiBioVersion={}", versions.join(":")));
        }
        if !self.algorithms.photos.is_empty() {
            let mut support = ["0"; 11];
            for t in &self.algorithms.photos {
                support[*t as usize] = "1";
            }
            pairs.push(format!("MultiBioPhotoSupport={}", support.join(":")));
        }
        pairs
    }

    /// Enrols a template on the terminal (its own version of the type) and
    /// uploads it as firmware does: `BIODATA` on a terminal of the unified
    /// table, else an `FP` or `FACE` line of `OPERLOG`. The answer.
    pub async fn enrol(
        &mut self,
        pin: &str,
        bio_type: i64,
        slot: i64,
        data: &[u8],
    ) -> anyhow::Result<(u16, String)> {
        let version = self
            .version_of(bio_type)
            .context("the terminal has no algorithm of that type")?;
        self.templates.insert(
            (pin.to_string(), bio_type, slot),
            (version.clone(), data.to_vec()),
        );
        if self.access {
            let line = biodata_line(pin, bio_type, slot, &version, data);
            return self.post_table("biodata", &[line]).await;
        }
        let tmp = STANDARD.encode(data);
        self.uploads += 1;
        let (table, line) = if self.biodata() {
            ("BIODATA", biodata_line(pin, bio_type, slot, &version, data))
        } else {
            let tag = if bio_type == 1 { "FP" } else { "FACE" };
            let size = tmp.len();
            (
                "OPERLOG",
                format!(
                    "OPLOG 6\t0\t2025-11-23 09:00:00\t{pin}\t{slot}\t{size}\n\
                     {tag} PIN={pin}\tFID={slot}\tSize={size}\tValid=1\tTMP={tmp}\n"
                ),
            )
        };
        self.post(
            &format!(
                "/iclock/cdata?SN={}&table={table}&Stamp={}",
                self.sn, self.uploads
            ),
            line.into_bytes(),
        )
        .await
    }

    /// Marks one of its fingerprints invalid (`FP … Valid=0` in its
    /// operation log), as a terminal whose finger was deleted reports it.
    /// The answer.
    pub async fn withdraw_finger(&mut self, pin: &str, slot: i64) -> anyhow::Result<(u16, String)> {
        self.templates.remove(&(pin.to_string(), 1, slot));
        self.uploads += 1;
        self.post(
            &format!(
                "/iclock/cdata?SN={}&table=OPERLOG&Stamp={}",
                self.sn, self.uploads
            ),
            format!("FP PIN={pin}\tFID={slot}\tValid=0\n").into_bytes(),
        )
        .await
    }

    /// Its templates of `pin`: (type, slot, version, bytes).
    pub fn templates_of(&self, pin: &str) -> Vec<(i64, i64, String, Vec<u8>)> {
        self.templates
            .iter()
            .filter(|(k, _)| k.0 == pin)
            .map(|(k, (v, d))| (k.1, k.2, v.clone(), d.clone()))
            .collect()
    }

    /// `GET path?query` as the terminal sends it: status and body.
    pub async fn get(&self, path_query: &str) -> anyhow::Result<(u16, String)> {
        let r = self
            .http
            .get(format!("{}{path_query}", self.base))
            .send()
            .await?;
        Ok((r.status().as_u16(), r.text().await?))
    }

    /// `POST path?query` with a text body: status and body.
    pub async fn post(&self, path_query: &str, body: Vec<u8>) -> anyhow::Result<(u16, String)> {
        let r = self
            .http
            .post(format!("{}{path_query}", self.base))
            .header("content-type", "text/plain")
            .body(body)
            .send()
            .await?;
        Ok((r.status().as_u16(), r.text().await?))
    }

    /// The init: fetches the options and sets the clock zone. Fails unless
    /// the answer starts with `GET OPTION FROM: <its SN>`.
    pub async fn init(&mut self) -> anyhow::Result<()> {
        let query = match self.access {
            true => "pushver=3.1.2&DeviceType=acc&PushOptionsFlag=1&language=83",
            false => "pushver=2.4.1&language=69",
        };
        let (status, body) = self
            .get(&format!("/iclock/cdata?SN={}&options=all&{query}", self.sn))
            .await?;
        let mut lines = body.lines();
        let first = lines.next().unwrap_or_default();
        if status != 200 || first != format!("GET OPTION FROM: {}", self.sn) {
            bail!("init refused: {status} {body:?}");
        }
        if self.access && !body.lines().any(|l| l == "registry=ok") {
            bail!("init does not say the terminal is registered: {body:?}");
        }
        self.options = lines
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let tz: i64 = self
            .options
            .get("TimeZone")
            .context("no TimeZone")?
            .parse()
            .context("TimeZone is not a number")?;
        self.utc_offset_min = if tz.abs() <= 14 { tz * 60 } else { tz };
        Ok(())
    }

    /// Logs a punch at Unix time `at`.
    pub fn punch(&mut self, pin: &str, at: i64, state: i64, verify: i64) {
        self.unsent.push(LogPunch {
            pin: pin.to_string(),
            at,
            state,
            verify,
        });
    }

    /// The wall-clock text of Unix time `at` on this terminal's clock.
    pub fn wall_clock(&self, at: i64) -> String {
        let local = at + self.utc_offset_min * 60;
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    }

    /// Sends its unsent punches (`ATTLOG`), as one upload; they are
    /// dropped from the log only on an `OK`. The server's answer.
    pub async fn upload(&mut self) -> anyhow::Result<(u16, String)> {
        if self.access {
            return self.upload_events().await;
        }
        let mut body = String::new();
        for p in &self.unsent {
            body.push_str(&format!(
                "{}\t{}\t{}\t{}\t0\t0\t0\n",
                p.pin,
                self.wall_clock(p.at),
                p.state,
                p.verify
            ));
        }
        self.uploads += 1;
        let (status, answer) = self
            .post(
                &format!(
                    "/iclock/cdata?SN={}&table=ATTLOG&Stamp={}",
                    self.sn, self.uploads
                ),
                body.into_bytes(),
            )
            .await?;
        if status == 200 && answer.starts_with("OK") {
            self.unsent.clear();
        }
        Ok((status, answer))
    }

    /// A heartbeat; with `info`, the report the first one after an init
    /// carries. The server's answer.
    pub async fn poll(&self, info: Option<&str>) -> anyhow::Result<(u16, String)> {
        let info = info.map_or(String::new(), |i| {
            format!("&INFO={}", i.replace(' ', "%20").replace(',', "%2C"))
        });
        self.get(&format!("/iclock/getrequest?SN={}{info}", self.sn))
            .await
    }

    /// Reports command results, batched one a line as firmware does.
    pub async fn results(&self, results: &[(i64, i64, &str)]) -> anyhow::Result<(u16, String)> {
        let body: Vec<String> = results
            .iter()
            .map(|(id, code, cmd)| format!("ID={id}&Return={code}&CMD={cmd}"))
            .collect();
        self.post(
            &format!("/iclock/devicecmd?SN={}", self.sn),
            body.join("\n").into_bytes(),
        )
        .await
    }
}

impl ZkTerminal {
    /// One poll (with its `INFO`): carries out the commands it is sent on
    /// its users and templates and reports their results in one batched
    /// `devicecmd`. The number of commands.
    pub async fn sync(&mut self) -> anyhow::Result<usize> {
        let (status, body) = self.poll(Some(&self.info())).await?;
        if status != 200 {
            bail!("poll refused: {status} {body:?}");
        }
        if body == "OK" {
            return Ok(0);
        }
        self.replies.push(body.len());
        let mut results = Vec::new();
        for line in body.lines() {
            let (id, cmd) = line
                .strip_prefix("C:")
                .and_then(|l| l.split_once(':'))
                .with_context(|| format!("not a command line: {line:?}"))?;
            let id: i64 = id.parse()?;
            self.received.push(cmd.to_string());
            let code = self.carry_out(cmd)?;
            let kind = cmd.split(' ').next().unwrap_or_default().to_string();
            results.push((id, code, kind));
        }
        let batch: Vec<(i64, i64, &str)> = results
            .iter()
            .map(|(id, code, kind)| (*id, *code, kind.as_str()))
            .collect();
        let (status, answer) = self.results(&batch).await?;
        if status != 200 {
            bail!("results refused: {status} {answer:?}");
        }
        if self.access && !self.postback.is_empty() {
            let lines = std::mem::take(&mut self.postback);
            let (status, answer) = self.post_table("biodata", &lines).await?;
            if status != 200 {
                bail!("templates from photos refused: {status} {answer:?}");
            }
        }
        if !self.postback.is_empty() {
            self.uploads += 1;
            let body = std::mem::take(&mut self.postback).concat();
            let (status, answer) = self
                .post(
                    &format!(
                        "/iclock/cdata?SN={}&table=BIODATA&Stamp={}",
                        self.sn, self.uploads
                    ),
                    body.into_bytes(),
                )
                .await?;
            if status != 200 {
                bail!("templates from photos refused: {status} {answer:?}");
            }
        }
        Ok(results.len())
    }

    /// Polls until a poll brings nothing; the commands carried out.
    pub async fn sync_all(&mut self) -> anyhow::Result<usize> {
        let mut total = 0;
        for _ in 0..1000 {
            match self.sync().await? {
                0 => return Ok(total),
                n => total += n,
            }
        }
        bail!("still being sent commands after 1000 polls")
    }

    /// One command on its users and templates; its result code (-1002 for
    /// one it cannot read, as real firmware answers).
    fn carry_out(&mut self, cmd: &str) -> anyhow::Result<i64> {
        let Some((verb, table, rest)) = cmd
            .strip_prefix("DATA ")
            .and_then(|c| c.split_once(' '))
            .map(|(verb, c)| {
                let (table, rest) = c.split_once(' ').unwrap_or((c, ""));
                (verb, table, rest)
            })
        else {
            return Ok(-1002);
        };
        let table = match self.table(table) {
            Ok(t) => t,
            Err(code) => return Ok(code),
        };
        let f: BTreeMap<String, String> = rest
            .split('\t')
            .filter_map(|f| f.split_once('='))
            .map(|(k, v)| (k.to_ascii_uppercase(), v.to_string()))
            .collect();
        let Some(pin) = f.get("PIN").cloned() else {
            return Ok(-1002);
        };
        if let Some(code) = self.refuse.get(&pin) {
            return Ok(*code);
        }
        let number = |k: &str| f.get(k).and_then(|v| v.parse::<i64>().ok());
        match (verb, table) {
            ("UPDATE", "USERINFO") => {
                let name = f.get("NAME").cloned().unwrap_or_default();
                self.users.insert(pin, name);
            }
            ("DELETE", "USERINFO") => {
                if self.users.remove(&pin).is_none() {
                    return Ok(-4);
                }
                self.templates.retain(|k, _| k.0 != pin);
            }
            ("UPDATE", "FINGERTMP" | "FACE" | "BIODATA") => {
                if !self.users.contains_key(&pin) {
                    return Ok(-10);
                }
                let tmp = f.get("TMP").cloned().unwrap_or_default();
                let Ok(data) = STANDARD.decode(&tmp) else {
                    return Ok(-11);
                };
                let (bio_type, slot, version) = if table == "BIODATA" {
                    let t = number("TYPE").unwrap_or(-1);
                    let slot = if t == 1 {
                        number("NO")
                    } else {
                        number("INDEX")
                    };
                    let v = format!(
                        "{}.{}",
                        number("MAJORVER").unwrap_or(0),
                        number("MINORVER").unwrap_or(0)
                    );
                    if self.version_of(t) != Some(v.clone()) {
                        return Ok(-30);
                    }
                    (t, slot, v)
                } else {
                    if number("SIZE") != Some(tmp.len() as i64) {
                        return Ok(-9);
                    }
                    let t = if table == "FINGERTMP" { 1 } else { 2 };
                    match self.version_of(t) {
                        Some(v) => (t, number("FID"), v),
                        None => return Ok(-1002),
                    }
                };
                let Some(slot) = slot else {
                    return Ok(-1);
                };
                self.templates
                    .insert((pin, bio_type, slot), (version, data));
            }
            ("UPDATE", "BIOPHOTO") => return Ok(self.take_photo(pin, &f)),
            ("DELETE", "FINGERTMP" | "FACE" | "BIODATA") => {
                let types: Vec<i64> = match table {
                    "FINGERTMP" => vec![1],
                    "FACE" => vec![2],
                    _ => number("TYPE").map_or(vec![1, 2, 9], |t| vec![t]),
                };
                let before = self.templates.len();
                self.templates
                    .retain(|k, _| !(k.0 == pin && types.contains(&k.1)));
                if self.templates.len() == before {
                    return Ok(-4);
                }
            }
            _ => return Ok(-1002),
        }
        Ok(0)
    }
}

impl ZkTerminal {
    /// `DATA UPDATE BIOPHOTO`: makes a template of its own version of the
    /// type from the photo, queued for posting back when asked; the
    /// result code.
    fn take_photo(&mut self, pin: String, f: &BTreeMap<String, String>) -> i64 {
        let number = |k: &str| f.get(k).and_then(|v| v.parse::<i64>().ok());
        let t = number("TYPE").unwrap_or(-1);
        let Some(version) = self
            .version_of(t)
            .filter(|_| self.algorithms.photos.contains(&t))
        else {
            return -1004;
        };
        if !self.users.contains_key(&pin) {
            return -10;
        }
        let content = f.get("CONTENT").cloned().unwrap_or_default();
        if number("SIZE") != Some(content.len() as i64) {
            return -9;
        }
        let Ok(jpeg) = STANDARD.decode(&content) else {
            return -11;
        };
        if !jpeg.starts_with(&[0xff, 0xd8, 0xff]) {
            return -12;
        }
        let template = extracted(&jpeg);
        if number("POSTBACKTMPFLAG") == Some(1) {
            self.postback
                .push(biodata_line(&pin, t, 0, &version, &template));
        }
        self.templates
            .insert((pin.clone(), t, 0), (version, template));
        self.photos.push((pin, t, jpeg));
        0
    }
}

/// The template the simulator "extracts" from a photo: a digest of it
/// (FNV-1a), so the same photo makes the same template.
pub fn extracted(jpeg: &[u8]) -> Vec<u8> {
    let mut out = b"sim-photo-template:".to_vec();
    for seed in [0xcbf2_9ce4_8422_2325u64, 0x8422_2325_cbf2_9ce4] {
        let h = jpeg.iter().fold(seed, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
        out.extend_from_slice(&h.to_le_bytes());
    }
    out
}

/// A `BIODATA` line of one template, as a terminal of the unified table
/// uploads it.
pub(crate) fn biodata_line(
    pin: &str,
    bio_type: i64,
    slot: i64,
    version: &str,
    data: &[u8],
) -> String {
    let (major, minor) = version.split_once('.').unwrap_or((version, "0"));
    let (no, index) = if bio_type == 1 { (slot, 0) } else { (0, slot) };
    format!(
        "BIODATA Pin={pin}\tNo={no}\tIndex={index}\tValid=1\tDuress=0\tType={bio_type}\t\
         MajorVer={major}\tMinorVer={minor}\tFormat=0\tTmp={}\n",
        STANDARD.encode(data)
    )
}

/// (year, month, day) of days since 1970-01-01 (Howard Hinnant's
/// algorithm), so the simulator needs no date crate.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_follows_the_zone() {
        let mut t = ZkTerminal::new("http://x", "SN");
        assert_eq!(t.wall_clock(1_704_164_645), "2024-01-02 03:04:05");
        t.utc_offset_min = 480;
        assert_eq!(t.wall_clock(1_704_164_645), "2024-01-02 11:04:05");
        t.utc_offset_min = -300;
        assert_eq!(t.wall_clock(1_704_164_645), "2024-01-01 22:04:05");
        assert_eq!(t.wall_clock(951_782_400 - 300 * -60), "2000-02-29 00:00:00");
    }
}
