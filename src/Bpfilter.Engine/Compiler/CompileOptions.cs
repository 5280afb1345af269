using Bpfilter.Engine.Kernel.Native;

namespace Bpfilter.Engine.Compiler;

/// <summary>
/// What the compiler needs from outside the ruleset: the ifindex of each interface a rule names (resolved where the
/// chain will run: the publisher resolves in the target namespace).
/// </summary>
public sealed record CompileOptions(Func<string, uint> InterfaceIndex)
{
    /// <summary>
    /// Classify long runs of rules with map lookups instead of testing them one by one (Optimizer/); false compiles
    /// every rule as its own run of compares, to compare the two and to debug.
    /// </summary>
    public bool Optimize { get; init; } = true;

    /// <summary>
    /// The fewest consecutive classifiable rules the optimizer classifies. Measured with BPF_PROG_TEST_RUN on this
    /// project's 2-core VM: one rule costs about 0.6–0.8 ns when tested in line, a classified run 25–40 ns whatever its
    /// length, so the two meet between 48 and 64 rules. Below it listings also keep one region per rule.
    /// </summary>
    public int MinimumClassifiedRun { get; init; } = 64;

    /// <summary>
    /// For listings and the interpreter, which need no real interface: this namespace's ifindex where the interface
    /// exists, else a stable stand-in (2^30 plus a hash of the name) that <see cref="SimulatedIndex"/> gives packets too.
    /// </summary>
    public static CompileOptions Simulation { get; } = new(SimulatedIndex);

    public static uint SimulatedIndex(string name)
    {
        uint index = LibC.IfNameToIndex(name);
        if (index != 0) return index;
        uint hash = 2166136261;
        foreach (var c in name) hash = (hash ^ c) * 16777619;
        return (1u << 30) | (hash & 0x3fffffff);
    }
}
