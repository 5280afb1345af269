using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler;

/// <summary>The counter slots of one user chain's rules in a hooked chain's counter map.</summary>
public sealed record UserChainSlots(string Chain, int FirstSlot, int RuleCount);

/// <summary>
/// Slots of a chain's counter array: one per rule in order, then the policy, then the packets the chain does not
/// judge (not IP) and the ones it drops as malformed, then the rules of each user chain the chain reaches.
/// </summary>
public sealed record CounterLayout
{
    public CounterLayout(int ruleCount, IEnumerable<(string Chain, int RuleCount)>? userChains = null)
    {
        RuleCount = ruleCount;
        var slots = new List<UserChainSlots>();
        int next = ruleCount + 3;
        foreach (var (chain, count) in userChains ?? [])
        {
            slots.Add(new UserChainSlots(chain, next, count));
            next += count;
        }
        UserChains = new ValueList<UserChainSlots>(slots);
        SlotCount = next;
    }

    public int RuleCount { get; }
    public ValueList<UserChainSlots> UserChains { get; }
    public int PolicySlot => RuleCount;
    public int NotIpSlot => RuleCount + 1;
    public int MalformedSlot => RuleCount + 2;
    public int SlotCount { get; }

    /// <summary>The slot of rule <paramref name="index"/> (0-based) of user chain <paramref name="chain"/>.</summary>
    public int UserChainSlot(string chain, int index) => UserChains.First(u => u.Chain == chain).FirstSlot + index;

    /// <summary>Each slot holds {u64 packets; u64 bytes} (per CPU, or shared when offloaded).</summary>
    public const int ValueSize = 16;
}
