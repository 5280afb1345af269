namespace Bpfilter.Engine.Compiler;

/// <summary>
/// Slots of a chain's per-CPU counter array: one per rule in order, then the policy, then the packets
/// the chain does not judge (not IPv4) and the ones it drops as malformed.
/// </summary>
public sealed record CounterLayout(int RuleCount)
{
    public int PolicySlot => RuleCount;
    public int NotIpv4Slot => RuleCount + 1;
    public int MalformedSlot => RuleCount + 2;
    public int SlotCount => RuleCount + 3;

    /// <summary>Each slot holds {u64 packets; u64 bytes} per CPU.</summary>
    public const int ValueSize = 16;
}
