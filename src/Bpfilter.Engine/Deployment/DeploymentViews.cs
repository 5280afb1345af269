using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Deployment;

/// <summary>Whether a deployed chain still filters, and if not, why.</summary>
public enum ChainState
{
    /// <summary>Attached and filtering.</summary>
    Attached,
    /// <summary>The interface it was attached to is gone (its link is defunct).</summary>
    InterfaceGone,
    /// <summary>The network namespace it was attached in is gone.</summary>
    NamespaceGone,
    /// <summary>The cgroup it was attached to is gone.</summary>
    CgroupGone,
    /// <summary>Its link pin is missing: something outside Bpfilter removed it.</summary>
    LinkMissing,
}

/// <summary>A chain as it runs in the kernel, read back from a deployment's manifest and links.</summary>
/// <param name="Interface">The interface of an xdp or tc chain.</param>
/// <param name="Cgroup">The cgroup directory of a cgroup chain.</param>
public sealed record DeployedChain(
    string Deployment, string Chain, Hook Hook, string? Interface, string? Cgroup, string? NetworkNamespace, XdpMode Mode, int? Priority,
    Verdict Policy, int RuleCount, uint ProgramId, IReadOnlyList<uint> LinkIds, ChainState State, IReadOnlyList<ManifestRule> Rules)
{
    public bool Attached => State == ChainState.Attached;
    public string HookName => Hook.ToName();
}

/// <summary>What is deployed under one name.</summary>
public sealed record DeploymentInfo(string Name, long Generation, DateTimeOffset PublishedAt, string? Source, IReadOnlyList<DeployedChain> Chains);

/// <summary>A deployed chain's program as the kernel holds it.</summary>
public sealed record DeployedProgram(
    string Deployment, string Chain, Hook Hook, string? Target, string? NetworkNamespace, XdpMode Mode, uint ProgramId, string Tag,
    int Instructions, uint JitedBytes, DateTimeOffset LoadedAt, int RuleCount, ChainState State)
{
    public string HookName => Hook.ToName();
}

/// <summary>What a counter row counts.</summary>
public enum CounterKind
{
    /// <summary>Packets a rule decided.</summary>
    Rule,
    /// <summary>Packets no rule matched: the chain's policy decided.</summary>
    Policy,
    /// <summary>Frames that are neither IPv4 nor IPv6 (ARP, other EtherTypes): passed without judging, as iptables never sees them.</summary>
    NotIp,
    /// <summary>Packets with a cut-short or invalid IP, IPv6 extension or transport header: dropped, as the kernel's IP stack would.</summary>
    Malformed,
}

/// <summary>Packets and bytes one rule (or the policy) has decided, summed over CPUs and carried over republishes.</summary>
public sealed record CounterRow(
    string Deployment, string Chain, int? Position, string Rule, CounterKind Kind, Verdict Action, ulong Packets, ulong Bytes);
