using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>Kernel tests run one at a time: they share the host's bpffs and its 2 CPUs.</summary>
[CollectionDefinition("kernel", DisableParallelization = true)]
public sealed class KernelCollection;
