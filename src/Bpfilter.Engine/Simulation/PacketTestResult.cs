using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Simulation;

/// <summary>What decided a packet: which counter slot of the chain counted it.</summary>
public enum Decider
{
    /// <summary>A rule matched.</summary>
    Rule,
    /// <summary>No rule matched: the chain's policy.</summary>
    Policy,
    /// <summary>Neither IPv4 nor IPv6 (ARP, other EtherTypes): accepted without judging.</summary>
    NotIp,
    /// <summary>A cut-short or invalid IP, IPv6 extension or transport header: dropped.</summary>
    Malformed,
}

/// <summary>
/// One run's decision, read as the deployment's counters would show it: the slot that counted the packet and
/// the program's return code.
/// </summary>
/// <param name="Verdict">Accept, Drop or (at xdp) Reject, from the return code; null for a code the hook does not use for these.</param>
/// <param name="Rule">The deciding rule's name ("#N" for an unnamed rule); empty when the policy, not-IP or malformed slot counted.</param>
/// <param name="Position">The deciding rule's 1-based position; null otherwise.</param>
/// <param name="ReturnCode">The program's return code as the hook reads it (XDP_PASS is 2, TCX_NEXT is −1).</param>
/// <param name="Bytes">The bytes the slot counted.</param>
/// <param name="Chain">The user chain whose rule decided, reached by a jump or goto; null for the hooked chain's own.</param>
public sealed record PacketDecision(Verdict? Verdict, string Rule, int? Position, Decider DecidedBy, int ReturnCode, ulong Bytes, string? Chain = null)
{
    /// <summary>Verdict, rule, position and return code all equal (bytes too).</summary>
    public bool SameAs(PacketDecision other) => this == other;

    public override string ToString() =>
        $"{Verdict?.ToString() ?? $"code {ReturnCode}"} by {DecidedBy switch
        {
            Decider.Rule => (Chain is null ? "" : $"chain {Chain} ") + $"rule {Position} {Rule}",
            Decider.Policy => "the policy",
            Decider.NotIp => "not ip",
            _ => "malformed",
        }}";
}

/// <summary>
/// What the hook knows of a packet besides its bytes: the interfaces it came in on and goes out of, its mark, and what
/// connection tracking knows of it (<see cref="ConntrackSimulation"/>; no state: no connection, as in a test run).
/// </summary>
public sealed record PacketContext(string? InInterface = null, string? OutInterface = null, uint Mark = 0, CtStates? CtState = null, CtDirection? CtDirection = null)
{
    public static PacketContext None { get; } = new();
}

/// <summary>What Test-BpfPacket returns: the interpreter's decision on one packet, and the kernel's beside it when asked.</summary>
public sealed class PacketTestResult
{
    internal PacketTestResult(string ruleset, Chain chain, string packet, int length, PacketDecision decision,
        IReadOnlyList<string> evaluated, long instructions, PacketDecision? kernel)
    {
        Ruleset = ruleset;
        Chain = chain.Name;
        Hook = chain.Hook.ToName();
        Packet = packet;
        Length = length;
        Decision = decision;
        Evaluated = evaluated;
        Instructions = instructions;
        Kernel = kernel;
    }

    public string Ruleset { get; }
    public string Chain { get; }

    /// <summary>The chain's hook in the YAML spelling ("xdp", "tc-ingress", "nf-input", ...).</summary>
    public string Hook { get; }

    /// <summary>The packet's headers in one line: "tcp 192.0.2.1:0 -> 192.0.2.2:23, 54 bytes".</summary>
    public string Packet { get; }

    /// <summary>The bytes the hook saw (and counted).</summary>
    public int Length { get; }

    public Verdict? Verdict => Decision.Verdict;

    /// <summary>The name of the rule that decided ("#N" for an unnamed rule); empty when the policy decided, or the packet was not IP or malformed.</summary>
    public string Rule => Decision.Rule;

    /// <summary>The 1-based position of the deciding rule in its chain; null when no rule decided.</summary>
    public int? Position => Decision.Position;

    public Decider DecidedBy => Decision.DecidedBy;
    public int ReturnCode => Decision.ReturnCode;

    /// <summary>The rules the packet was tried against, in order, ending with the one that matched (if one did).</summary>
    public IReadOnlyList<string> Evaluated { get; }

    /// <summary>eBPF instructions the interpreter executed.</summary>
    public long Instructions { get; }

    /// <summary>The interpreter's decision as a whole.</summary>
    public PacketDecision Decision { get; }

    /// <summary>The kernel's decision on the same program and packet (BPF_PROG_TEST_RUN), when -Kernel asked for it.</summary>
    public PacketDecision? Kernel { get; }

    /// <summary>Whether the kernel decided as the interpreter did; null without a kernel run.</summary>
    public bool? Agrees => Kernel is null ? null : Kernel.SameAs(Decision);

    public override string ToString() => $"{Chain}: {Packet}: {Decision}";
}
