//! `sentryctl`: the scansentry control CLI. All logic lives in [`scansentry::ctl`].

fn main() -> std::process::ExitCode {
    scansentry::ctl::main()
}
