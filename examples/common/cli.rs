//! The examples' `main`: each example parses its own options with clap (`Args::parse()` at the
//! start of its `run`, so a misspelt option is an error) and hands `run` to [`main_with`].

/// Runs `run` (after [`prunus::keep_freed_memory`]); when it fails, prints the error and its causes (`error: …`, `caused by: …`) and
/// exits with the code of its kind, as the `prunus` CLI does ([`prunus::ErrorKind`]).
pub fn main_with(run: fn() -> Result<(), Box<dyn std::error::Error>>) {
    prunus::keep_freed_memory();
    if let Err(e) = run() {
        let messages = prunus::error_messages(e.as_ref());
        eprintln!("error: {}", messages[0]);
        for cause in &messages[1..] {
            eprintln!("caused by: {cause}");
        }
        std::process::exit(prunus::error_kind(e.as_ref()).exit_code());
    }
}
