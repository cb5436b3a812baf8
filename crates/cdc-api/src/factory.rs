use crate::{Options, Result, SchemaApplier, Sink, Source};

/// One option a factory understands: its key, default and a one-line description.
///
/// Factories list their options so the runtime can reject unknown keys (naming the nearest
/// known one), report missing required ones, print them in `cdc validate` and generate the
/// docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigOption {
    /// The key as written in the pipeline file, e.g. `sink.buffer-flush.interval`.
    pub name: &'static str,
    /// The default as text, if the option has one.
    pub default: Option<&'static str>,
    /// What it does, in one line.
    pub description: &'static str,
    /// Whether the pipeline must set it.
    pub required: bool,
    /// Why the option is accepted but changes nothing here (a Flink CDC option that is
    /// meaningless for this engine by design); `None` for an option that takes effect.
    /// `cdc connectors` and the docs show the reason, and the workspace's tests check
    /// that every option without one is read by its factory.
    pub no_effect: Option<&'static str>,
}

impl ConfigOption {
    /// A required option (no default).
    pub const fn required(name: &'static str, description: &'static str) -> Self {
        Self {
            name,
            default: None,
            description,
            required: true,
            no_effect: None,
        }
    }

    /// An optional option with a default.
    pub const fn optional(
        name: &'static str,
        default: &'static str,
        description: &'static str,
    ) -> Self {
        Self {
            name,
            default: Some(default),
            description,
            required: false,
            no_effect: None,
        }
    }

    /// The same option, accepted for compatibility with Flink CDC pipeline files but
    /// without effect here, for the reason given (shown to users).
    pub const fn without_effect(self, reason: &'static str) -> Self {
        Self {
            no_effect: Some(reason),
            ..self
        }
    }

    /// An optional option without a default.
    pub const fn optional_no_default(name: &'static str, description: &'static str) -> Self {
        Self {
            name,
            default: None,
            description,
            required: false,
            no_effect: None,
        }
    }
}

/// What a factory gets to build its connector.
#[derive(Debug, Clone)]
pub struct FactoryContext {
    /// The pipeline's name (`pipeline.name`), for labels, server ids and messages.
    pub pipeline_name: String,
    /// The connector's own options (its YAML block without `type` and `name`).
    pub options: Options,
    /// The `pipeline` block, e.g. for `local-time-zone`.
    pub pipeline_options: Options,
}

/// Builds a [`Source`] from its options. Registered under [`identifier`](Self::identifier)
/// (the `type:` of a `source` block).
///
/// # Contract
/// `create` validates every option and returns [`Error::InvalidOption`](crate::Error) for
/// bad ones, but does no I/O: connecting happens in [`Source::open`]. That lets
/// `cdc validate` check a file without touching any server.
///
/// ```
/// use cdc_api::{ConfigOption, FactoryContext, Result, Source, SourceFactory};
/// struct Nothing;
/// impl SourceFactory for Nothing {
///     fn identifier(&self) -> &'static str { "nothing" }
///     fn options(&self) -> Vec<ConfigOption> { vec![] }
///     fn create(&self, _ctx: &FactoryContext) -> Result<Box<dyn Source>> {
///         Err(cdc_api::Error::permanent("nothing", "see examples/custom/mod.rs for a full source"))
///     }
/// }
/// assert_eq!(Nothing.identifier(), "nothing");
/// ```
pub trait SourceFactory: Send + Sync {
    /// The `type:` value that selects this factory, e.g. `mysql`.
    fn identifier(&self) -> &'static str;
    /// Every option, required and optional.
    fn options(&self) -> Vec<ConfigOption>;
    /// Key prefixes passed through as a group (`jdbc.properties.`); keys under them are
    /// accepted without being listed.
    fn option_prefixes(&self) -> Vec<&'static str> {
        Vec::new()
    }
    /// Builds the source; validates options, no I/O.
    fn create(&self, ctx: &FactoryContext) -> Result<Box<dyn Source>>;
}

/// The two halves a sink factory builds: the writer and the schema applier.
pub struct SinkParts {
    /// Writes rows and takes part in checkpoints.
    pub sink: Box<dyn Sink>,
    /// Applies schema changes to the target.
    pub applier: Box<dyn SchemaApplier>,
}

/// Builds a [`Sink`] and its [`SchemaApplier`] from options. Same contract as
/// [`SourceFactory`]: validate in `create`, connect later.
pub trait SinkFactory: Send + Sync {
    /// The `type:` value that selects this factory, e.g. `doris`.
    fn identifier(&self) -> &'static str;
    /// Every option, required and optional.
    fn options(&self) -> Vec<ConfigOption>;
    /// Key prefixes passed through as a group (`sink.properties.`).
    fn option_prefixes(&self) -> Vec<&'static str> {
        Vec::new()
    }
    /// Builds the sink and its applier; validates options, no I/O.
    fn create(&self, ctx: &FactoryContext) -> Result<SinkParts>;
}
