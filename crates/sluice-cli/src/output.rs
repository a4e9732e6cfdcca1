//! Output helpers: formats, colour (terminals only), tables, the spinner and
//! the progress lines flux prints (`►`, `✔`, `✗`, `◎`).

use std::io::{IsTerminal, Write};

use clap::{Args, ValueEnum};
use serde::Serialize;

/// `-o/--output`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A table for humans.
    #[default]
    Table,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// The `-o` flag of commands that print data.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// Prints `value` as JSON or YAML (for non-table formats).
pub fn print_data<T: Serialize>(format: OutputFormat, value: &T) -> anyhow::Result<()> {
    let text = match format {
        OutputFormat::Json => serde_json::to_string_pretty(value)? + "\n",
        _ => serde_norway::to_string(value)?,
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// ANSI colour, enabled only on a terminal without `NO_COLOR`.
#[derive(Debug, Clone, Copy)]
pub struct Color {
    enabled: bool,
}

impl Color {
    fn for_stream(is_tty: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Color {
            enabled: is_tty && !no_color,
        }
    }

    /// For stdout.
    pub fn stdout() -> Self {
        Self::for_stream(std::io::stdout().is_terminal())
    }

    /// For stderr.
    pub fn stderr() -> Self {
        Self::for_stream(std::io::stderr().is_terminal())
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// Red.
    pub fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }

    /// Green.
    pub fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }

    /// Yellow.
    pub fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }

    /// Dim.
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }

    /// Bold.
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }

    /// `True` green, `False` red, anything else yellow.
    pub fn status(&self, s: &str) -> String {
        match s {
            "True" => self.green(s),
            "False" => self.red(s),
            _ => self.yellow(s),
        }
    }
}

/// flux's progress lines, on stderr.
pub struct Log {
    color: Color,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            color: Color::stderr(),
        }
    }
}

impl Log {
    /// `► msg` (an action starts).
    pub fn action(&self, msg: &str) {
        eprintln!("{} {msg}", self.color.bold("►"));
    }

    /// `✔ msg`.
    pub fn success(&self, msg: &str) {
        eprintln!("{} {msg}", self.color.green("✔"));
    }

    /// `◎ msg` (waiting).
    pub fn waiting(&self, msg: &str) {
        eprintln!("{} {msg}", self.color.yellow("◎"));
    }

    /// `✗ msg`.
    pub fn failure(&self, msg: &str) {
        eprintln!("{} {msg}", self.color.red("✗"));
    }

    /// `! msg` (a warning).
    pub fn warning(&self, msg: &str) {
        eprintln!("{} {msg}", self.color.yellow("!"));
    }
}

/// A one-line spinner on stderr showing the current phase; silent when
/// stderr is not a terminal.
pub struct Spinner {
    enabled: bool,
    frame: usize,
    last: String,
}

const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

impl Default for Spinner {
    fn default() -> Self {
        Self::new()
    }
}

impl Spinner {
    /// A spinner, active only on a terminal.
    pub fn new() -> Self {
        Spinner {
            enabled: std::io::stderr().is_terminal(),
            frame: 0,
            last: String::new(),
        }
    }

    /// Shows the next frame with `phase`.
    pub fn tick(&mut self, phase: &str) {
        if !self.enabled {
            return;
        }
        self.frame = (self.frame + 1) % FRAMES.len();
        let mut phase = phase.replace('\n', " ");
        if phase.chars().count() > 100 {
            phase = phase.chars().take(99).collect::<String>() + "…";
        }
        self.last = phase;
        eprint!("\r\x1b[2K{} {}", FRAMES[self.frame], self.last);
        let _ = std::io::stderr().flush();
    }

    /// Clears the line.
    pub fn clear(&mut self) {
        if self.enabled {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }
}

/// A table printed with columns padded to their widest cell (three spaces
/// apart), headers in upper case as flux prints them.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Index of a column to colour as a condition status.
    pub status_column: Option<usize>,
}

impl Table {
    /// A table with these headers.
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
            status_column: None,
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text (one line per row, no trailing spaces).
    pub fn render(&self, color: Color) -> String {
        let n = self.header.len();
        let mut widths = vec![0usize; n];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate().take(n) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for (r, row) in std::iter::once(&self.header).chain(&self.rows).enumerate() {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(n) {
                let last = i + 1 == n;
                let shown = if r > 0 && Some(i) == self.status_column {
                    color.status(cell)
                } else {
                    cell.clone()
                };
                line.push_str(&shown);
                if !last {
                    let pad = widths[i] - cell.chars().count() + 3;
                    line.push_str(&" ".repeat(pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A short age like kubectl's (`5s`, `3m`, `2h`, `4d`).
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    if s < 120 {
        format!("{s}s")
    } else if s < 7200 {
        format!("{}m", s / 60)
    } else if s < 2 * 86400 {
        format!("{}h", s / 3600)
    } else {
        format!("{}d", s / 86400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_columns() {
        let mut t = Table::new(&["NAME", "READY", "MESSAGE"]);
        t.row(vec!["apps".into(), "True".into(), "ok".into()]);
        t.row(vec!["infrastructure".into(), "False".into(), "".into()]);
        assert_eq!(
            t.render(Color { enabled: false }),
            "NAME             READY   MESSAGE\napps             True    ok\ninfrastructure   False\n"
        );
    }

    #[test]
    fn ages() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(600), "10m");
        assert_eq!(age(3 * 3600), "3h");
        assert_eq!(age(3 * 86400), "3d");
    }
}
