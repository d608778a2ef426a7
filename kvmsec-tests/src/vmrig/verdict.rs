//! Reading the guest's verdict from its console output.
//!
//! The guest's `/init` ends with one line `KVMSEC-VM-EXIT <nonce> <status>`,
//! where `<status>` is the exit status of the test binary and `<nonce>` a
//! random token chosen by the host for this boot, so that no text printed by a
//! test can pass for the verdict. A setup step that fails prints
//! `KVMSEC-VM-SETUP-FAILED: <what>` first. The libtest summary lines
//! (`test result: ok. 5 passed; 0 failed; ...`) give the test counts.

/// Marker that starts the verdict line.
pub const EXIT_MARKER: &str = "KVMSEC-VM-EXIT";

/// Marker of a failed setup step in `/init`.
pub const SETUP_FAILED_MARKER: &str = "KVMSEC-VM-SETUP-FAILED:";

/// What the console says about the run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Exit status of the guest test binary, if the verdict line was printed.
    pub exit_status: Option<i32>,
    /// Failed setup steps reported by `/init`.
    pub setup_failures: Vec<String>,
    /// Tests libtest reported as passed.
    pub passed: usize,
    /// Tests libtest reported as failed.
    pub failed: usize,
    /// Whether a libtest summary line was seen at all.
    pub saw_summary: bool,
}

impl Verdict {
    /// Parses `console` for the verdict of the boot that used `nonce`.
    pub fn parse(console: &str, nonce: &str) -> Verdict {
        let mut verdict = Verdict::default();
        for line in console.lines() {
            // Serial output has CR LF line ends and may carry kernel messages
            // before our text on the same line; markers must start the line.
            let line = line.trim_end_matches('\r');
            if let Some(rest) = line.strip_prefix(EXIT_MARKER) {
                let mut words = rest.split_whitespace();
                if words.next() == Some(nonce)
                    && let Some(Ok(status)) = words.next().map(str::parse::<i32>)
                    && words.next().is_none()
                {
                    verdict.exit_status = Some(status);
                }
            } else if let Some(what) = line.strip_prefix(SETUP_FAILED_MARKER) {
                verdict.setup_failures.push(what.trim().to_string());
            } else if let Some(summary) = line.strip_prefix("test result: ") {
                verdict.saw_summary = true;
                for part in summary.split(';') {
                    let mut words = part.split_whitespace().rev();
                    let (Some(label), Some(count)) = (words.next(), words.next()) else {
                        continue;
                    };
                    let Ok(count) = count.parse::<usize>() else {
                        continue;
                    };
                    match label {
                        "passed" => verdict.passed += count,
                        "failed" => verdict.failed += count,
                        _ => {}
                    }
                }
            }
        }
        verdict
    }

    /// Why the run does not count as a pass (at least `min_passed` tests
    /// passed, none failed, exit status 0, setup complete), or `None`.
    pub fn failure(&self, min_passed: usize) -> Option<String> {
        if !self.setup_failures.is_empty() {
            return Some(format!(
                "guest setup failed: {}",
                self.setup_failures.join("; ")
            ));
        }
        match self.exit_status {
            None => Some("no verdict from the guest (crash, hang or timeout)".into()),
            Some(0) if !self.saw_summary => Some("the guest printed no test summary".into()),
            Some(0) if self.failed > 0 => Some(format!("{} guest tests failed", self.failed)),
            Some(0) if self.passed < min_passed => Some(format!(
                "only {} guest tests passed, expected at least {min_passed} (filter wrong?)",
                self.passed
            )),
            Some(0) => None,
            Some(status) => Some(format!(
                "guest tests failed (exit status {status}, {} passed, {} failed)",
                self.passed, self.failed
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "running 2 tests\r\ntest a ... ok\r\ntest b ... ok\r\n\r\n\
        test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 5 filtered out; \
        finished in 0.20s\r\n\r\nKVMSEC-VM-EXIT n0nce 0\r\n[    3.1] reboot: Power down\r\n";

    #[test]
    fn a_clean_run_passes() {
        let v = Verdict::parse(OK, "n0nce");
        assert_eq!(v.exit_status, Some(0));
        assert_eq!((v.passed, v.failed), (2, 0));
        assert_eq!(v.failure(2), None);
        assert!(v.failure(3).unwrap().contains("only 2"));
    }

    #[test]
    fn wrong_nonce_or_missing_line_is_no_verdict() {
        let v = Verdict::parse(OK, "other");
        assert_eq!(v.exit_status, None);
        assert!(v.failure(1).unwrap().contains("no verdict"));
        let v = Verdict::parse("test result: ok. 1 passed; 0 failed\n", "n");
        assert!(v.failure(1).unwrap().contains("no verdict"));
        // A test echoing a marker mid-line does not count.
        let v = Verdict::parse("note: KVMSEC-VM-EXIT n 0\n", "n");
        assert_eq!(v.exit_status, None);
    }

    #[test]
    fn failures_are_reported() {
        let text = "test result: FAILED. 1 passed; 1 failed; 0 ignored\nKVMSEC-VM-EXIT n 101\n";
        let v = Verdict::parse(text, "n");
        assert_eq!(v.exit_status, Some(101));
        assert!(v.failure(1).unwrap().contains("exit status 101"));
        let text = "KVMSEC-VM-SETUP-FAILED: loading the policy\nKVMSEC-VM-EXIT n 90\n";
        let v = Verdict::parse(text, "n");
        assert!(v.failure(0).unwrap().contains("loading the policy"));
        let v = Verdict::parse("KVMSEC-VM-EXIT n 0\n", "n");
        assert!(v.failure(0).unwrap().contains("no test summary"));
    }
}
