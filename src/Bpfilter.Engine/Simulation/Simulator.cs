using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Simulation;

/// <summary>
/// Test-BpfPacket's engine: picks the chain a packet meets, builds the packet for that chain's hook, runs it in the
/// interpreter (no kernel, no privileges) and, when asked, through the kernel too.
/// </summary>
public static class Simulator
{
    /// <summary>
    /// The chain named <paramref name="chainName"/>; without a name, the ruleset's only chain, or its only chain at
    /// <paramref name="hook"/>.
    /// </summary>
    public static Chain SelectChain(Ruleset ruleset, string? chainName, Hook? hook = null)
    {
        ArgumentNullException.ThrowIfNull(ruleset);
        if (chainName is not null)
        {
            var named = ruleset.Chains.FirstOrDefault(c => string.Equals(c.Name, chainName, StringComparison.Ordinal))
                ?? ruleset.Chains.FirstOrDefault(c => string.Equals(c.Name, chainName, StringComparison.OrdinalIgnoreCase))
                ?? throw new BpfilterException("ChainNotFound", FailureCategory.ObjectNotFound,
                    $"ruleset '{ruleset.Name}' has no chain named '{chainName}' (its chains: {List(ruleset.Chains)})");
            if (hook is { } h && named.Hook != h)
                throw new BpfilterException("ChainNotFound", FailureCategory.ObjectNotFound,
                    $"chain '{named.Name}' of ruleset '{ruleset.Name}' is at {named.Hook.ToName()}, not {h.ToName()}");
            return named;
        }
        var candidates = hook is { } at ? ruleset.Chains.Where(c => c.Hook == at).ToList() : ruleset.Chains.ToList();
        if (candidates.Count == 1) return candidates[0];
        if (candidates.Count == 0)
            throw new BpfilterException("ChainNotFound", FailureCategory.ObjectNotFound,
                $"ruleset '{ruleset.Name}' has no chain at {hook!.Value.ToName()} (its chains: {List(ruleset.Chains)})");
        throw new BpfilterException("ChainAmbiguous", FailureCategory.InvalidArgument,
            $"ruleset '{ruleset.Name}' has {candidates.Count} chains{(hook is { } x ? $" at {x.ToName()}" : "")} ({List(candidates)}): name one with -Chain, or its hook with -Hook");
    }

    /// <summary>
    /// Runs <paramref name="packet"/> (the bytes <paramref name="chain"/>'s hook sees) through a fresh copy of the chain.
    /// <paramref name="context"/>'s CtState and CtDirection say what connection tracking knows of it
    /// (<see cref="ConntrackSimulation"/>); without them it knows nothing, as in a test run.
    /// </summary>
    public static PacketTestResult Test(Ruleset ruleset, Chain chain, byte[] packet, bool kernel = false, PacketContext? context = null)
    {
        if (context is { CtDirection: not null, CtState: null })
            throw new BpfilterException("CtStateInvalid", FailureCategory.InvalidArgument, "-CtDirection needs -CtState: say which state the packet's connection is in");
        if (kernel && context?.CtState is not null)
            throw new BpfilterException("CtStateInvalid", FailureCategory.InvalidArgument,
                "-CtState cannot go with -Kernel: a kernel test run has no connection to give the packet (it sees none: invalid at netfilter hooks and tc-egress, new at xdp and tc-ingress)");
        var simulator = new ChainSimulator(ChainCompiler.Compile(ruleset, chain, CompileOptions.Simulation));
        var run = simulator.Run(packet, context);
        PacketDecision? kernelDecision = null;
        if (kernel)
        {
            if (context is not null && context != PacketContext.None)
                throw new BpfilterException("KernelContextUnsupported", FailureCategory.InvalidArgument,
                    "the kernel's test run (-Kernel) cannot give a packet an interface or a mark; test those in the interpreter, without -Kernel");
            using var runner = new KernelChainRunner(simulator.Compiled);
            kernelDecision = runner.Run(packet);
        }
        return new PacketTestResult(ruleset.Name, chain, PacketBuilder.Describe(packet, simulator.Layer), packet.Length, run.Decision,
            run.EvaluatedPositions.Select(simulator.RuleName).ToArray(), run.Execution.Steps, kernelDecision);
    }

    /// <summary>Builds the packet from <paramref name="fields"/> for <paramref name="chain"/>'s hook, then runs it.</summary>
    public static PacketTestResult Test(Ruleset ruleset, Chain chain, PacketFields fields, bool kernel = false, PacketContext? context = null) =>
        Test(ruleset, chain, PacketBuilder.Build(fields, ChainSimulator.LayerOf(chain.Hook)), kernel, context);

    private static string List(IEnumerable<Chain> chains) => string.Join(", ", chains.Select(c => $"{c.Name} ({c.AttachPoint})"));
}
