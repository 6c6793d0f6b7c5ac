//! One module per subcommand.

pub(crate) mod bench;
pub(crate) mod bench_serve;
pub(crate) mod bench_sessions;
pub(crate) mod collection;
pub(crate) mod eval;
pub(crate) mod fsck;
pub(crate) mod gc;
pub(crate) mod import;
pub(crate) mod learn;
pub(crate) mod list;
pub(crate) mod pull;
pub(crate) mod registry;
pub(crate) mod rm;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod session;
pub(crate) mod show;
pub(crate) mod squash;
pub(crate) mod versions;
