use std::collections::BTreeMap;
use std::sync::Arc;

use crate::{SinkFactory, SourceFactory};

/// The connectors a pipeline can use, by identifier. Explicit: nothing is discovered behind
/// your back; the `cdc` binary registers the built-in connectors and an embedding
/// application adds its own with one call.
///
/// ```
/// use cdc_api::{ConfigOption, ConnectorRegistry, FactoryContext, Result, SinkFactory, SinkParts};
/// struct MySink;
/// impl SinkFactory for MySink {
///     fn identifier(&self) -> &'static str { "my-sink" }
///     fn options(&self) -> Vec<ConfigOption> { vec![] }
///     fn create(&self, _ctx: &FactoryContext) -> Result<SinkParts> {
///         Err(cdc_api::Error::permanent("my-sink", "not part of this example"))
///     }
/// }
/// let mut registry = ConnectorRegistry::new();
/// registry.register_sink(MySink);
/// assert!(registry.sink("my-sink").is_some());
/// ```
#[derive(Default, Clone)]
pub struct ConnectorRegistry {
    sources: BTreeMap<&'static str, Arc<dyn SourceFactory>>,
    sinks: BTreeMap<&'static str, Arc<dyn SinkFactory>>,
}

impl ConnectorRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a source factory; a later one with the same identifier replaces the earlier.
    pub fn register_source(&mut self, factory: impl SourceFactory + 'static) -> &mut Self {
        self.sources.insert(factory.identifier(), Arc::new(factory));
        self
    }

    /// Adds a sink factory; a later one with the same identifier replaces the earlier.
    pub fn register_sink(&mut self, factory: impl SinkFactory + 'static) -> &mut Self {
        self.sinks.insert(factory.identifier(), Arc::new(factory));
        self
    }

    /// The source factory for `type: identifier`.
    pub fn source(&self, identifier: &str) -> Option<Arc<dyn SourceFactory>> {
        self.sources.get(identifier).cloned()
    }

    /// The sink factory for `type: identifier`.
    pub fn sink(&self, identifier: &str) -> Option<Arc<dyn SinkFactory>> {
        self.sinks.get(identifier).cloned()
    }

    /// Registered source identifiers, sorted.
    pub fn source_identifiers(&self) -> Vec<&'static str> {
        self.sources.keys().copied().collect()
    }

    /// Registered sink identifiers, sorted.
    pub fn sink_identifiers(&self) -> Vec<&'static str> {
        self.sinks.keys().copied().collect()
    }
}

impl std::fmt::Debug for ConnectorRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorRegistry")
            .field("sources", &self.source_identifiers())
            .field("sinks", &self.sink_identifiers())
            .finish()
    }
}
