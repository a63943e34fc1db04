//! Unit tests of the ContainerPilot 2 translation.
