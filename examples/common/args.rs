//! Command-line options shared by the examples: `--name value` pairs and `--flag`s.

/// The program's arguments.
pub struct Args(Vec<String>);

impl Args {
    /// The arguments the program was started with.
    pub fn from_env() -> Self {
        Self(std::env::args().skip(1).collect())
    }

    /// The value after `name`, if `name` is given.
    pub fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.0.get(i + 1).cloned())
    }

    /// The number after `name`, or `default` when `name` is not given.
    pub fn num(&self, name: &str, default: f64) -> Result<f64, String> {
        self.get(name).map_or(Ok(default), |v| {
            v.parse::<f64>()
                .map_err(|_| format!("{name} needs a number, got {v}"))
        })
    }

    /// Whether `name` is given.
    #[allow(dead_code)]
    pub fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }
}

/// Runs `run`, printing its error on one line and exiting with 1 when it fails.
pub fn main_with(run: fn() -> Result<(), Box<dyn std::error::Error>>) {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
