//! Black-box tests of the running server. One test binary (faster to link); one module per area.

mod cli;
mod graphql;
mod health;
mod plumbing;
mod schema;
