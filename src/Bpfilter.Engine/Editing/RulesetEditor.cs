using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Editing;

/// <summary>Which rules of a chain an edit is about: by 1-based position, or by rule name.</summary>
public sealed record RuleSelection
{
    private RuleSelection(ValueList<int> positions, ValueList<string> names)
    {
        Positions = positions;
        Names = names;
    }

    public static RuleSelection AtPositions(IEnumerable<int> positions) => new(new(positions.Distinct()), ValueList<string>.Empty);
    public static RuleSelection Named(IEnumerable<string> names) => new(ValueList<int>.Empty, new(names.Distinct(StringComparer.Ordinal)));

    public ValueList<int> Positions { get; }
    public ValueList<string> Names { get; }

    /// <summary>The 0-based indexes of the selected rules; every position and name must be in the chain.</summary>
    internal HashSet<int> IndexesIn(string chain, IReadOnlyList<Rule> rules)
    {
        var indexes = new HashSet<int>();
        foreach (var position in Positions)
        {
            if (position < 1 || position > rules.Count)
                throw new BpfilterException("RulePositionOutOfRange", FailureCategory.InvalidArgument,
                    rules.Count == 0 ? $"chain '{chain}' has no rules" : $"chain '{chain}' has {Count(rules.Count)}: a position is 1 to {rules.Count}, not {position}");
            indexes.Add(position - 1);
        }
        foreach (var name in Names)
        {
            int index = rules.Select(r => r.Name).ToList().IndexOf(name);
            if (index < 0)
                throw new BpfilterException("RuleNotFound", FailureCategory.ObjectNotFound,
                    $"chain '{chain}' has no rule named '{name}'" + (rules.Any(r => r.Name is not null) ? $": its rules are {string.Join(", ", rules.Where(r => r.Name is not null).Select(r => r.Name))}" : ""));
            indexes.Add(index);
        }
        return indexes;
    }

    internal static string Count(int rules) => rules == 1 ? "1 rule" : $"{rules} rules";
}

/// <summary>
/// Edits of the immutable rules model: each function returns a new object and leaves its input as it was. The new
/// object is built through the model's constructors, so it is checked as a ruleset read from a file would be
/// (duplicate rule names, jump targets, set references, hook keys).
/// </summary>
public static class RulesetEditor
{
    /// <summary>The rules with <paramref name="added"/> inserted so that the first of them is at 1-based <paramref name="position"/>; at the end when null.</summary>
    public static IReadOnlyList<Rule> Insert(string chain, IReadOnlyList<Rule> rules, IReadOnlyList<Rule> added, int? position)
    {
        int at = position ?? rules.Count + 1;
        if (at < 1 || at > rules.Count + 1)
            throw new BpfilterException("RulePositionOutOfRange", FailureCategory.InvalidArgument,
                $"chain '{chain}' has {RuleSelection.Count(rules.Count)}: a new rule goes at a position from 1 to {rules.Count + 1}, not {at}");
        return [.. rules.Take(at - 1), .. added, .. rules.Skip(at - 1)];
    }

    /// <summary>The rules without those <paramref name="which"/> selects.</summary>
    public static IReadOnlyList<Rule> Remove(string chain, IReadOnlyList<Rule> rules, RuleSelection which)
    {
        var indexes = which.IndexesIn(chain, rules);
        return rules.Where((_, i) => !indexes.Contains(i)).ToList();
    }

    public static Chain WithRules(Chain chain, IReadOnlyList<Rule> rules) =>
        new(chain.Name, chain.Hook, chain.Interface, chain.Policy, rules, chain.Mode, chain.Priority, chain.Order, chain.Cgroup, chain.NetworkNamespace);

    public static UserChain WithRules(UserChain chain, IReadOnlyList<Rule> rules) => new(chain.Name, rules);

    /// <summary>The chain with a new policy and/or interface (null keeps the current one).</summary>
    public static Chain WithSettings(Chain chain, Verdict? policy, string? interfaceName) =>
        new(chain.Name, chain.Hook, interfaceName ?? chain.Interface, policy ?? chain.Policy, chain.Rules, chain.Mode, chain.Priority, chain.Order,
            chain.Cgroup, chain.NetworkNamespace);

    public static Chain AddRules(Chain chain, IReadOnlyList<Rule> added, int? position) => WithRules(chain, Insert(chain.Name, chain.Rules, added, position));
    public static UserChain AddRules(UserChain chain, IReadOnlyList<Rule> added, int? position) => WithRules(chain, Insert(chain.Name, chain.Rules, added, position));
    public static Chain RemoveRules(Chain chain, RuleSelection which) => WithRules(chain, Remove(chain.Name, chain.Rules, which));
    public static UserChain RemoveRules(UserChain chain, RuleSelection which) => WithRules(chain, Remove(chain.Name, chain.Rules, which));

    /// <summary>Adds rules to the chain (hooked or user) named <paramref name="chainName"/>, or to the only chain when it is null.</summary>
    public static Ruleset AddRules(Ruleset ruleset, string? chainName, IReadOnlyList<Rule> added, int? position) =>
        EditRules(ruleset, chainName, (name, rules) => Insert(name, rules, added, position));

    public static Ruleset RemoveRules(Ruleset ruleset, string? chainName, RuleSelection which) =>
        EditRules(ruleset, chainName, (name, rules) => Remove(name, rules, which));

    /// <summary>Changes the policy and/or interface of the hooked chain <paramref name="chainName"/>, or of the only hooked chain when it is null.</summary>
    public static Ruleset SetChain(Ruleset ruleset, string? chainName, Verdict? policy, string? interfaceName)
    {
        if (chainName is not null && ruleset.FindUserChain(chainName) is not null)
            throw new RulesetValidationException($"chain '{chainName}' has no hook, so it has no policy or interface: its end returns to the rule after the jump", "chains");
        var target = ChainName(ruleset, chainName, ruleset.Chains.Select(c => c.Name).ToList(), "hooked chain");
        return new Ruleset(ruleset.Name, ruleset.Chains.Select(c => c.Name == target ? WithSettings(c, policy, interfaceName) : c).ToList(),
            ruleset.SourcePath, ruleset.UserChains, ruleset.Sets);
    }

    /// <summary>The names of every chain of the ruleset, hooked chains first, in order.</summary>
    public static IEnumerable<string> ChainNames(Ruleset ruleset) => ruleset.Chains.Select(c => c.Name).Concat(ruleset.UserChains.Select(c => c.Name));

    private static Ruleset EditRules(Ruleset ruleset, string? chainName, Func<string, IReadOnlyList<Rule>, IReadOnlyList<Rule>> edit)
    {
        var target = ChainName(ruleset, chainName, ChainNames(ruleset).ToList(), "chain");
        return new Ruleset(ruleset.Name,
            ruleset.Chains.Select(c => c.Name == target ? WithRules(c, edit(c.Name, c.Rules)) : c).ToList(),
            ruleset.SourcePath,
            ruleset.UserChains.Select(c => c.Name == target ? WithRules(c, edit(c.Name, c.Rules)) : c).ToList(),
            ruleset.Sets);
    }

    private static string ChainName(Ruleset ruleset, string? chainName, IReadOnlyList<string> candidates, string kind)
    {
        if (chainName is null)
        {
            return candidates.Count == 1 ? candidates[0]
                : throw new BpfilterException("ChainNotNamed", FailureCategory.InvalidArgument,
                    $"ruleset '{ruleset.Name}' has more than one {kind} ({string.Join(", ", candidates)}): name the chain to edit");
        }
        return candidates.Contains(chainName, StringComparer.Ordinal) ? chainName
            : throw new BpfilterException("ChainNotFound", FailureCategory.ObjectNotFound,
                $"ruleset '{ruleset.Name}' has no {kind} '{chainName}': its {kind}s are {string.Join(", ", candidates)}");
    }
}
