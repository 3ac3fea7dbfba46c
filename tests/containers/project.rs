//! A compose project of the tests: the project's own compose files, with the
//! test's images and subnet passed as variables, brought down with its
//! volumes whether the test passes or not.

use std::path::Path;
use std::process::Command;

use crate::support::{REPO, try_run};

/// One `docker compose -p NAME -f FILE…` project.
pub struct Project {
    name: &'static str,
    files: Vec<String>,
    env: Vec<(String, String)>,
}

impl Project {
    /// The project `name` over `files` (relative to the repository), with
    /// `env` for the files' variables. What an earlier, killed run left
    /// under the same name is brought down first.
    pub fn new(name: &'static str, files: &[&str], env: &[(&str, &str)]) -> Project {
        crate::support::require_engine();
        let project = Project {
            name,
            files: files
                .iter()
                .map(|f| Path::new(REPO).join(f).display().to_string())
                .collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        project.down();
        project
    }

    /// The compose command with this project's name, files and variables:
    /// `docker compose` where the plugin is installed, else `docker-compose`.
    fn command(&self) -> Command {
        let mut command = if compose_plugin() {
            let mut c = Command::new("docker");
            c.arg("compose");
            c
        } else {
            Command::new("docker-compose")
        };
        command.arg("--project-name").arg(self.name);
        for file in &self.files {
            command.arg("--file").arg(file);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs `compose ARGS`: its output, or what it printed on failure.
    pub fn try_compose(&self, args: &[&str]) -> Result<String, String> {
        try_run(self.command().args(args))
    }

    /// Runs `compose ARGS`, failing the test if it fails.
    pub fn compose(&self, args: &[&str]) -> String {
        self.try_compose(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `services` (all when empty) from images that exist already.
    pub fn up(&self, services: &[&str]) {
        let mut args = vec!["up", "--detach", "--no-build"];
        args.extend_from_slice(services);
        self.compose(&args);
    }

    /// Runs `command` in the running container of `service`.
    pub fn exec(&self, service: &str, command: &[&str]) -> Result<String, String> {
        let mut args = vec!["exec", "-T", service];
        args.extend_from_slice(command);
        self.try_compose(&args)
    }

    /// The id of the container of `service`.
    pub fn container(&self, service: &str) -> String {
        self.compose(&["ps", "--quiet", service])
    }

    fn down(&self) {
        if let Err(e) =
            self.try_compose(&["down", "--volumes", "--remove-orphans", "--timeout", "1"])
        {
            eprintln!("compose down of {}: {e}", self.name);
        }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- logs of {}:", self.name);
            if let Ok(logs) = self.try_compose(&["logs", "--no-color", "--tail", "15"]) {
                eprintln!("{logs}");
            }
        }
        self.down();
    }
}

/// Whether `docker compose` (the CLI plugin) answers; else the tests use
/// `docker-compose`, as Debian packages it.
fn compose_plugin() -> bool {
    static PLUGIN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PLUGIN.get_or_init(|| try_run(Command::new("docker").args(["compose", "version"])).is_ok())
}
