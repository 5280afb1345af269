using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Deployment;

/// <summary>A chain as it runs in the kernel, read back from a deployment's manifest and links.</summary>
public sealed record DeployedChain(
    string Deployment, string Chain, Hook Hook, string Interface, string? NetworkNamespace, XdpMode Mode, Verdict Policy,
    int RuleCount, uint ProgramId, uint LinkId, bool Attached, IReadOnlyList<ManifestRule> Rules);

/// <summary>What is deployed under one name.</summary>
public sealed record DeploymentInfo(
    string Name, long Generation, DateTimeOffset PublishedAt, string? NetworkNamespace, string? Source, IReadOnlyList<DeployedChain> Chains);

/// <summary>What a counter row counts.</summary>
public enum CounterKind
{
    /// <summary>Packets a rule decided.</summary>
    Rule,
    /// <summary>Packets no rule matched: the chain's policy decided.</summary>
    Policy,
    /// <summary>Frames that are not IPv4 (ARP, IPv6, ...): passed without judging, as iptables never sees them.</summary>
    NotIpv4,
    /// <summary>IPv4 packets with a cut-short or invalid header: dropped, as the kernel's IP stack would.</summary>
    Malformed,
}

/// <summary>Packets and bytes one rule (or the policy) has decided, summed over CPUs.</summary>
public sealed record CounterRow(
    string Deployment, string Chain, int? Position, string Rule, CounterKind Kind, Verdict Action, ulong Packets, ulong Bytes);
