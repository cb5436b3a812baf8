//! `transform` rules: projection (columns, `*`, computed columns, metadata columns), filter,
//! primary/partition key overrides, table options and SOFT_DELETE, as Flink CDC 3.x.
//!
//! Expressions are parsed once when the pipeline is built ([`parse`]), bound to a table's
//! schema when it arrives or changes ([`bind`], [`schema`]) and evaluated per row without
//! looking at text again ([`eval`], [`functions`]). The stage ([`stage`]) runs right before
//! routing.

mod bind;
mod cast;
mod eval;
mod expr;
mod functions;
mod json;
mod numeric;
mod parse;
mod rule;
mod schema;
mod stage;
mod temporal;
mod types;

pub(crate) use stage::Transformer;
pub(crate) use types::DecimalMode;
