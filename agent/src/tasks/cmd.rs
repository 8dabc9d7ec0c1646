//! Running a program: stdin closed, stdout and stderr captured, and errors that name the command.

use std::process::{Command, Stdio};

/// A command line to run, with extra environment variables.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// What a finished command printed and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line as shown to the operator.
    pub command: String,
    pub success: bool,
    /// "exit status 100", "killed by signal 9".
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

impl Cmd {
    pub fn new(program: &str) -> Self {
        Cmd { program: program.to_string(), args: Vec::new(), env: Vec::new() }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// The command line, quoted where needed, for messages.
    pub fn display(&self) -> String {
        std::iter::once(&self.program).chain(&self.args).map(|a| quote(a)).collect::<Vec<_>>().join(" ")
    }

    /// Runs it to the end. Err only when it could not be started; a failing exit is in the Output.
    pub fn output(&self) -> Result<Output, String> {
        let command = self.display();
        let out = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    format!("cannot run `{command}`: {} is not installed (not found in PATH)", self.program)
                }
                _ => format!("cannot run `{command}`: {e}"),
            })?;
        let status = match (out.status.code(), std::os::unix::process::ExitStatusExt::signal(&out.status)) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            (None, None) => "unknown status".to_string(),
        };
        Ok(Output {
            command,
            success: out.status.success(),
            status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs it; a failing exit becomes an error naming the command, with the end of its output.
    pub fn run(&self) -> Result<Output, String> {
        let out = self.output()?;
        if out.success { Ok(out) } else { Err(out.failure()) }
    }
}

impl Output {
    /// The last `n` lines of what it printed (stdout, then stderr), without empty lines.
    pub fn tail(&self, n: usize) -> String {
        let lines: Vec<&str> =
            self.stdout.lines().chain(self.stderr.lines()).map(str::trim_end).filter(|l| !l.is_empty()).collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// "`CMD` failed (exit status N):\n<last lines>".
    pub fn failure(&self) -> String {
        let tail = self.tail(20);
        if tail.is_empty() {
            format!("`{}` failed ({}) without output", self.command, self.status)
        } else {
            format!("`{}` failed ({}):\n{tail}", self.command, self.status)
        }
    }
}

fn quote(s: &str) -> String {
    let plain =
        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c) || !c.is_ascii());
    if plain { s.to_string() } else { format!("'{}'", s.replace('\'', "'\\''")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_names_the_failing_command() {
        let ok = Cmd::new("sh").args(["-c", "echo out; echo err >&2"]).run().unwrap();
        assert_eq!((ok.stdout.as_str(), ok.stderr.as_str()), ("out\n", "err\n"));

        let err = Cmd::new("sh").args(["-c", "for i in $(seq 1 30); do echo line$i; done; exit 3"]).run().unwrap_err();
        assert!(
            err.starts_with("`sh -c 'for i in $(seq 1 30); do echo line$i; done; exit 3'` failed (exit status 3):")
        );
        assert!(err.contains("line11\n") && err.ends_with("line30") && !err.contains("line10\n"), "{err}");

        let env = Cmd::new("sh").args(["-c", "echo $GW_TEST"]).env("GW_TEST", "x y").run().unwrap();
        assert_eq!(env.stdout, "x y\n");

        let missing = Cmd::new("groundwork-no-such-program").arg("a b").output().unwrap_err();
        assert_eq!(
            missing,
            "cannot run `groundwork-no-such-program 'a b'`: groundwork-no-such-program is not installed (not found in PATH)"
        );
    }
}
