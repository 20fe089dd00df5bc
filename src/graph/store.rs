//! The tensors of a graph's parameters and buffers, by name.

use super::Graph;
use crate::error::{fmt_shape, Error, Result};
use crate::nn::ParamKind;
use crate::{Rng, Tensor};

/// A graph's parameters and buffers, in the order of [`Graph::param_specs`], with their names.
#[derive(Clone, Debug)]
pub struct ParamStore {
    names: Vec<String>,
    kinds: Vec<ParamKind>,
    tensors: Vec<Tensor>,
}

impl ParamStore {
    /// Fresh tensors drawn from each parameter's initialiser.
    pub fn init(graph: &Graph, rng: &mut Rng) -> ParamStore {
        let specs = graph.param_specs();
        ParamStore {
            names: specs.iter().map(|p| p.name.clone()).collect(),
            kinds: specs.iter().map(|p| p.spec.kind).collect(),
            tensors: specs
                .iter()
                .map(|p| p.spec.init.tensor(&p.spec.shape, rng))
                .collect(),
        }
    }

    /// A store from named tensors, checked against the graph: every missing, unexpected or
    /// wrongly shaped tensor is listed in one error.
    pub fn from_named(
        graph: &Graph,
        named: impl IntoIterator<Item = (String, Tensor)>,
    ) -> Result<ParamStore> {
        let mut given: Vec<Option<(String, Tensor)>> = named.into_iter().map(Some).collect();
        let mut problems = Vec::new();
        let mut tensors = Vec::new();
        for p in graph.param_specs() {
            let found = given
                .iter_mut()
                .find(|g| g.as_ref().is_some_and(|(name, _)| *name == p.name))
                .and_then(Option::take);
            match found {
                Some((_, t)) if t.shape() == p.spec.shape => tensors.push(t),
                Some((_, t)) => problems.push(format!(
                    "{}: expected {}, found {}",
                    p.name,
                    fmt_shape(&p.spec.shape),
                    fmt_shape(t.shape())
                )),
                None => problems.push(format!(
                    "{}: missing (expected {})",
                    p.name,
                    fmt_shape(&p.spec.shape)
                )),
            }
        }
        for (name, t) in given.into_iter().flatten() {
            problems.push(format!(
                "{name}: unexpected tensor {} (not a parameter of {})",
                fmt_shape(t.shape()),
                graph.name()
            ));
        }
        if !problems.is_empty() {
            const SHOWN: usize = 25;
            let count = problems.len();
            if count > SHOWN {
                problems.truncate(SHOWN);
                problems.push(format!("... and {} more", count - SHOWN));
            }
            return Err(Error::InvalidArgument {
                op: format!("load weights into {}", graph.name()),
                message: format!("{count} problem(s):\n  {}", problems.join("\n  ")),
            });
        }
        let specs = graph.param_specs();
        Ok(ParamStore {
            names: specs.iter().map(|p| p.name.clone()).collect(),
            kinds: specs.iter().map(|p| p.spec.kind).collect(),
            tensors,
        })
    }

    /// Number of tensors (parameters and buffers).
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The tensor of this name.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.tensors[i])
    }

    /// Names and tensors in graph order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.names
            .iter()
            .map(String::as_str)
            .zip(self.tensors.iter())
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn kinds(&self) -> &[ParamKind] {
        &self.kinds
    }

    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    /// Mutable tensors, for an optimiser (parameters) or a statistics update (buffers).
    pub fn tensors_mut(&mut self) -> &mut [Tensor] {
        &mut self.tensors
    }
}
