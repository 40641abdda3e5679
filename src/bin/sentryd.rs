//! `sentryd`: the scansentry daemon. All logic lives in [`scansentry::daemon`].

fn main() -> std::process::ExitCode {
    scansentry::daemon::main()
}
