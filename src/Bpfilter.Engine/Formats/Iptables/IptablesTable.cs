using System.Text.RegularExpressions;
using Match = Bpfilter.Engine.Rules.Match;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Formats.Iptables;

/// <summary>Packets and bytes a rule or policy has counted.</summary>
public readonly record struct IptablesCounts(ulong Packets, ulong Bytes);

/// <summary>A counter of a ruleset: a rule (its chain, hooked or user, and 0-based index) or, with no rule, a hooked chain's policy.</summary>
public readonly record struct RulesetCounter(string Chain, int? Rule);

/// <summary>What a rule or policy of the table shows, and the counter of the ruleset it was read from that it goes on from (null: it starts at <see cref="Counts"/>).</summary>
public sealed record TableCounter(IptablesCounts Counts, RulesetCounter? From)
{
    public static readonly TableCounter Zero = new(default, null);
}

/// <summary>
/// iptables' filter table, for IPv4 (iptables) and IPv6 (ip6tables) at once, read from a ruleset and written back
/// into one, changed by <see cref="IptablesCommand"/>s as iptables changes its own.
/// <para>
/// The built-in chains INPUT, FORWARD and OUTPUT are the ruleset's hooked chains of those names (at nf-input,
/// nf-forward and nf-output unless placed elsewhere), holding the rules of both families: a rule's family says which
/// packets it sees, so iptables' rule N is the Nth IPv4 rule of the chain. Each family has its own policy: the chain's
/// is IPv4's, and IPv6's is the chain's last rule, named <see cref="Ip6PolicyRuleName"/>, which takes every IPv6
/// packet no rule decided (so each policy counts its own family's packets). User chains are shared by the families:
/// -N makes a chain for both, -X removes it from both. Rules without a family (from YAML) show in both families'
/// listings and change for both. A comment repeated in a chain is kept as "comment #2" (rule names are unique) and
/// shown as typed.
/// </para>
/// </summary>
public sealed partial class IptablesTable
{
    /// <summary>The name of the rule that holds ip6tables' policy of a built-in chain (refused as a comment of your own).</summary>
    public const string Ip6PolicyRuleName = "(ip6tables policy)";

    private readonly List<TableChain> _builtIns;
    private readonly List<TableChain> _userChains;
    private readonly Ruleset? _source;
    private readonly HashSet<RulesetCounter> _zeroed = [];

    private IptablesTable(string name, List<TableChain> builtIns, List<TableChain> userChains, Ruleset? source)
    {
        Name = name;
        _builtIns = builtIns;
        _userChains = userChains;
        _source = source;
    }

    /// <summary>The deployment name.</summary>
    public string Name { get; }

    /// <summary>The counters of the ruleset read that -Z has zeroed since (for zeroing them in place).</summary>
    public IReadOnlyCollection<RulesetCounter> Zeroed => _zeroed;

    /// <summary>An empty table: the three built-in chains, policy ACCEPT, no rules.</summary>
    public static IptablesTable Empty(string name)
    {
        Names.CheckDeploymentName(name);
        return new IptablesTable(name, IptablesSaveOptions.BuiltInChains.Select(b => TableChain.BuiltIn(b, null)).ToList(), [], null);
    }

    /// <summary>
    /// The table a ruleset holds, with the counts <paramref name="counts"/> gives each rule and policy (none: zero).
    /// A hooked chain that is not INPUT, FORWARD or OUTPUT is a BpfilterException IptablesInexpressible: iptables
    /// has no such chain. A built-in chain the ruleset lacks is empty, with policy ACCEPT.
    /// </summary>
    public static IptablesTable FromRuleset(Ruleset ruleset, Func<RulesetCounter, IptablesCounts>? counts = null)
    {
        ArgumentNullException.ThrowIfNull(ruleset);
        counts ??= _ => default;
        var builtIns = IptablesSaveOptions.BuiltInChains.Select(b => TableChain.BuiltIn(b, null)).ToList();
        foreach (var chain in ruleset.Chains)
        {
            var index = builtIns.FindIndex(b => b.Name == chain.Name);
            if (index < 0)
                throw new BpfilterException("IptablesInexpressible", FailureCategory.InvalidData,
                    $"deployment '{ruleset.Name}' has chain '{chain.Name}' at {chain.AttachPoint}, and iptables' filter table has only INPUT, FORWARD and OUTPUT: "
                    + "change this deployment with Add-BpfRule and Remove-BpfRule, or publish it again from iptables commands");
            var table = TableChain.BuiltIn(chain.Name, chain);
            var rules = chain.Rules;
            int count = rules.Count;
            table.Policy4 = chain.Policy;
            table.Policy4Counter = new TableCounter(counts(new RulesetCounter(chain.Name, null)), new RulesetCounter(chain.Name, null));
            if (count > 0 && IsIp6Policy(rules[^1]))
            {
                count--;
                table.Policy6 = rules[^1].Verdict;
                table.Policy6Counter = new TableCounter(counts(new RulesetCounter(chain.Name, count)), new RulesetCounter(chain.Name, count));
            }
            else
            {
                // Written some other way: IPv6 packets reach the chain's own policy, whose count is IPv4's then.
                table.Policy6 = chain.Policy;
            }
            for (int i = 0; i < count; i++)
                table.Rules.Add(new TableRule(rules[i], ruleset.FamilyOf(rules[i]), new TableCounter(counts(new RulesetCounter(chain.Name, i)), new RulesetCounter(chain.Name, i))));
            builtIns[index] = table;
        }
        var userChains = ruleset.UserChains.Select(u =>
        {
            var table = TableChain.User(u.Name);
            for (int i = 0; i < u.Rules.Count; i++)
                table.Rules.Add(new TableRule(u.Rules[i], ruleset.FamilyOf(u.Rules[i]), new TableCounter(counts(new RulesetCounter(u.Name, i)), new RulesetCounter(u.Name, i))));
            return table;
        }).ToList();
        return new IptablesTable(ruleset.Name, builtIns, userChains, ruleset);
    }

    private static bool IsIp6Policy(Rule rule) =>
        rule.Name == Ip6PolicyRuleName && rule.Verdict.Kind is VerdictKind.Accept or VerdictKind.Drop && rule.Match == new Match { Family = IpFamily.Ipv6 };

    /// <summary>
    /// The ruleset the table is: the built-in chains where <paramref name="options"/> places them (else where the
    /// ruleset read had them, else at their netfilter hooks), the user chains, and the sets of the ruleset read; and
    /// for each counter of the new ruleset, what it starts from.
    /// </summary>
    public (Ruleset Ruleset, IReadOnlyDictionary<RulesetCounter, TableCounter> Counters) ToRuleset(IptablesSaveOptions? options = null)
    {
        options ??= IptablesSaveOptions.Default;
        var counters = new Dictionary<RulesetCounter, TableCounter>();
        var chains = new List<Chain>();
        foreach (var table in _builtIns)
        {
            var rules = table.Rules.Select(r => r.Rule).Append(new Rule(Ip6PolicyRuleName, new Match { Family = IpFamily.Ipv6 }, table.Policy6)).ToList();
            for (int i = 0; i < table.Rules.Count; i++) counters[new RulesetCounter(table.Name, i)] = table.Rules[i].Counter;
            counters[new RulesetCounter(table.Name, table.Rules.Count)] = table.Policy6Counter;
            counters[new RulesetCounter(table.Name, null)] = table.Policy4Counter;
            var template = table.Template;
            if (options.Placements.TryGetValue(table.Name, out var placement) && (template is null || !placement.Holds(template)))
                chains.Add(new Chain(table.Name, placement.Hook, placement.Interface, table.Policy4, rules, placement.Mode,
                    cgroup: placement.Cgroup, networkNamespace: template?.NetworkNamespace));
            else if (template is not null)
                chains.Add(new Chain(table.Name, template.Hook, template.Interface, table.Policy4, rules, template.Mode, template.Priority,
                    template.Order, template.Cgroup, template.NetworkNamespace));
            else
            {
                var standard = IptablesSaveOptions.Default.PlacementOf(table.Name);
                chains.Add(new Chain(table.Name, standard.Hook, null, table.Policy4, rules));
            }
        }
        var userChains = _userChains.Select(u =>
        {
            for (int i = 0; i < u.Rules.Count; i++) counters[new RulesetCounter(u.Name, i)] = u.Rules[i].Counter;
            return new UserChain(u.Name, u.Rules.Select(r => r.Rule).ToList());
        }).ToList();
        return (new Ruleset(Name, chains, _source?.SourcePath, userChains, _source?.Sets), counters);
    }

    /// <summary>
    /// Runs one command on the table; returns what -L and -S print (nothing for the other commands). A command
    /// that fails changes nothing. <paramref name="names"/> looks up host, network, service and protocol names for
    /// -L without -n.
    /// </summary>
    public IReadOnlyList<string> Run(IptablesCommand command, IptablesNameLookup? names = null)
    {
        ArgumentNullException.ThrowIfNull(command);
        var family = command.Family;
        switch (command.Operation)
        {
            case IptablesOperation.Append:
                Append(command);
                return [];
            case IptablesOperation.Insert:
                Insert(command);
                return [];
            case IptablesOperation.Replace:
                Replace(command);
                return [];
            case IptablesOperation.Delete:
                Delete(command);
                return [];
            case IptablesOperation.Check:
                foreach (var rule in command.Rules) Find(Existing(command.Chain!), rule, family);
                return [];
            case IptablesOperation.List:
                var listed = IptablesListing.List(this, command, names ?? IptablesNameLookup.System);
                if (command.ZeroAfterListing) Zero(command);
                return listed;
            case IptablesOperation.ListRules:
                return IptablesListing.Rules(this, command);
            case IptablesOperation.Flush:
                foreach (var chain in command.Chain is { } name ? [Existing(name)] : Chains) chain.Rules.RemoveAll(r => Sees(r, family));
                return [];
            case IptablesOperation.Zero:
                Zero(command);
                return [];
            case IptablesOperation.NewChain:
                if (FindChain(command.Chain!) is not null)
                    throw new BpfilterException("ChainExists", FailureCategory.ResourceExists, $"the chain {command.Chain} exists already (iptables: Chain already exists)");
                _userChains.Add(TableChain.User(command.Chain!));
                return [];
            case IptablesOperation.DeleteChain:
                DeleteChains(command);
                return [];
            case IptablesOperation.RenameChain:
                Rename(command);
                return [];
            default:
                var policyChain = Existing(command.Chain!);
                if (!policyChain.IsBuiltIn)
                    throw Invalid($"{policyChain.Name} is a chain of your own, and only the built-in chains INPUT, FORWARD and OUTPUT have a policy (iptables: Bad built-in chain name)");
                if (family == IpFamily.Ipv4) policyChain.Policy4 = command.Policy!;
                else policyChain.Policy6 = command.Policy!;
                return [];
        }
    }

    /// <summary>The built-in chains, then the user chains in the order they were made.</summary>
    internal IEnumerable<TableChain> Chains => _builtIns.Concat(_userChains);

    internal IReadOnlyList<TableChain> BuiltIns => _builtIns;

    internal IReadOnlyList<TableChain> UserChains => _userChains;

    internal TableChain? FindChain(string name) => Chains.FirstOrDefault(c => c.Name == name);

    internal TableChain Existing(string name) => FindChain(name)
        ?? throw new BpfilterException("ChainNotFound", FailureCategory.ObjectNotFound,
            $"there is no chain {name} in the filter table (iptables: No chain/target/match by that name); its chains are {string.Join(", ", Chains.Select(c => c.Name))}");

    /// <summary>True when a family's packets meet the rule.</summary>
    internal static bool Sees(TableRule rule, IpFamily family) => rule.Family is null || rule.Family == family;

    /// <summary>A chain's rules as one family's iptables numbers them, with their places in the chain.</summary>
    internal static List<(TableRule Rule, int Index)> View(TableChain chain, IpFamily family) =>
        chain.Rules.Select((r, i) => (r, i)).Where(x => Sees(x.r, family)).ToList();

    /// <summary>The rule's name as iptables shows it: a repeated comment without the " #N" that kept it unique.</summary>
    internal static string? ShownName(TableChain chain, Rule rule)
    {
        if (rule.Name is not { } name || RepeatSuffix().Match(name) is not { Success: true } repeat) return rule.Name;
        var stem = repeat.Groups[1].Value;
        return chain.Rules.Any(r => r.Rule.Name == stem) ? stem : name;
    }

    private void Append(IptablesCommand command)
    {
        var chain = Existing(command.Chain!);
        foreach (var rule in command.Rules) chain.Rules.Add(NewRule(chain, rule, command, null));
    }

    private void Insert(IptablesCommand command)
    {
        var chain = Existing(command.Chain!);
        var view = View(chain, command.Family);
        int number = command.RuleNumber ?? 1;
        if (number > view.Count + 1)
            throw OutOfRange($"{chain.Name} has {Count(view.Count, command.Family)}, so a rule goes in at 1 to {view.Count + 1}, not {number} (iptables: Index of insertion too big)");
        int at = number <= view.Count ? view[number - 1].Index : chain.Rules.Count;
        // iptables inserts the rules of an address list one by one at the same number, so the last comes first.
        foreach (var rule in command.Rules) chain.Rules.Insert(at, NewRule(chain, rule, command, null));
    }

    private void Replace(IptablesCommand command)
    {
        var chain = Existing(command.Chain!);
        var view = View(chain, command.Family);
        int number = command.RuleNumber!.Value;
        if (number > view.Count)
            throw OutOfRange($"{chain.Name} has {Count(view.Count, command.Family)}, so there is no rule {number} to replace (iptables: Index of replacement too big)");
        var index = view[number - 1].Index;
        chain.Rules[index] = NewRule(chain, command.Rules[0], command, index);
    }

    private void Delete(IptablesCommand command)
    {
        var chain = Existing(command.Chain!);
        if (command.RuleNumber is int number)
        {
            var view = View(chain, command.Family);
            if (number > view.Count)
                throw OutOfRange($"{chain.Name} has {Count(view.Count, command.Family)}, so there is no rule {number} to delete (iptables: Index of deletion too big)");
            chain.Rules.RemoveAt(view[number - 1].Index);
            return;
        }
        foreach (var rule in command.Rules) chain.Rules.RemoveAt(Find(chain, rule, command.Family));
    }

    /// <summary>The place of the first rule of the family equal to <paramref name="rule"/>, as -D and -C find it; RuleNotFound when none is.</summary>
    private static int Find(TableChain chain, Rule rule, IpFamily family)
    {
        foreach (var (candidate, index) in View(chain, family))
        {
            var shown = candidate.Rule;
            if (ShownName(chain, shown) == rule.Name && shown.Match == rule.Match && shown.Verdict == rule.Verdict) return index;
        }
        throw new BpfilterException("RuleNotFound", FailureCategory.ObjectNotFound,
            $"{chain.Name} has no such rule (iptables: Bad rule (does a matching rule exist in that chain?)): -S {chain.Name} lists its rules as iptables reads them");
    }

    private void Zero(IptablesCommand command)
    {
        var family = command.Family;
        var chains = command.Chain is { } name ? [Existing(name)] : Chains.ToList();
        foreach (var chain in chains)
        {
            var view = View(chain, family);
            // iptables zeroes nothing, and says nothing, for a rule the chain does not have.
            if (command.RuleNumber is int number) view = number <= view.Count ? [view[number - 1]] : [];
            foreach (var (rule, index) in view)
            {
                if (rule.Counter.From is { } from) _zeroed.Add(from);
                chain.Rules[index] = rule with { Counter = TableCounter.Zero };
            }
            if (!chain.IsBuiltIn || command.RuleNumber is not null) continue;
            var policy = family == IpFamily.Ipv4 ? chain.Policy4Counter : chain.Policy6Counter;
            if (policy.From is { } policyFrom) _zeroed.Add(policyFrom);
            if (family == IpFamily.Ipv4) chain.Policy4Counter = TableCounter.Zero;
            else chain.Policy6Counter = TableCounter.Zero;
        }
    }

    private void DeleteChains(IptablesCommand command)
    {
        List<TableChain> doomed;
        if (command.Chain is { } name)
        {
            var chain = Existing(name);
            if (chain.IsBuiltIn) throw Invalid($"{name} is a built-in chain, which cannot be deleted (iptables: Invalid argument)");
            doomed = [chain];
        }
        else doomed = [.. _userChains];
        foreach (var chain in doomed)
        {
            if (chain.Rules.Count > 0)
                throw new BpfilterException("ChainInUse", FailureCategory.InvalidOperation,
                    $"the chain {chain.Name} has {chain.Rules.Count} rule(s){FamilyNote(chain)}: flush it with -F {chain.Name} first (iptables: Directory not empty)");
            var referrer = Chains.Where(c => !doomed.Contains(c)).SelectMany(c => c.Rules.Select(r => (c, r))).FirstOrDefault(x => x.r.Rule.Verdict.Target == chain.Name);
            if (referrer.c is not null)
                throw new BpfilterException("ChainInUse", FailureCategory.InvalidOperation,
                    $"the chain {chain.Name} is the target of a rule of {referrer.c.Name}: delete or replace that rule first (iptables: Too many links)");
        }
        foreach (var chain in doomed) _userChains.Remove(chain);
    }

    private static string FamilyNote(TableChain chain) =>
        chain.Rules.Select(r => r.Family).Distinct().Count() > 1 ? " of iptables and ip6tables (user chains are shared)" : "";

    private void Rename(IptablesCommand command)
    {
        var chain = Existing(command.Chain!);
        if (chain.IsBuiltIn) throw Invalid($"{chain.Name} is a built-in chain, which keeps its name (iptables: Invalid argument)");
        var newName = command.NewName!;
        if (FindChain(newName) is not null)
            throw new BpfilterException("ChainExists", FailureCategory.ResourceExists, $"the chain {newName} exists already (iptables: File exists)");
        var renamed = TableChain.User(newName);
        renamed.Rules.AddRange(chain.Rules);
        _userChains[_userChains.IndexOf(chain)] = renamed;
        foreach (var other in Chains)
        {
            for (int i = 0; i < other.Rules.Count; i++)
            {
                var rule = other.Rules[i];
                if (rule.Rule.Verdict.Target != chain.Name) continue;
                var verdict = rule.Rule.Verdict.Kind == VerdictKind.Goto ? Verdict.Goto(newName) : Verdict.Jump(newName);
                other.Rules[i] = rule with { Rule = new Rule(rule.Rule.Name, rule.Rule.Match, verdict) };
            }
        }
    }

    /// <summary>
    /// The rule as the chain holds it: its target checked (a user chain that exists and does not lead back here), its
    /// name unique in the chain, its counters those -c gave. <paramref name="replacing"/> is the index of the rule it replaces.
    /// </summary>
    private TableRule NewRule(TableChain chain, Rule rule, IptablesCommand command, int? replacing)
    {
        var family = command.Family;
        if (rule.Name == Ip6PolicyRuleName)
            throw new BpfilterException("IptablesRuleInvalid", FailureCategory.InvalidArgument,
                $"the comment '{Ip6PolicyRuleName}' is the name Bpfilter gives the rule that holds ip6tables' policy: choose another");
        if (rule.Verdict.Target is { } target)
        {
            var to = FindChain(target);
            if (to is null)
                throw new BpfilterException("ChainNotFound", FailureCategory.ObjectNotFound,
                    $"there is no chain {target} to {(rule.Verdict.Kind == VerdictKind.Goto ? "go" : "jump")} to: make it with -N {target} first (iptables: Couldn't load target `{target}')");
            if (to.IsBuiltIn) throw Invalid($"{target} is a built-in chain: rules jump and go only to chains of your own");
            if (Leads(to, chain.Name) is { } path) throw Invalid($"the chains would jump in a loop: {chain.Name} -> {string.Join(" -> ", path)} (iptables: Too many levels of symbolic links)");
        }
        if (family == IpFamily.Ipv6 && chain.IsBuiltIn && rule.Verdict.Kind == VerdictKind.Return)
            throw new BpfilterException("IptablesRuleInvalid", FailureCategory.InvalidArgument,
                $"-j RETURN in {chain.Name} for ip6tables: Bpfilter keeps ip6tables' policy of a built-in chain in its last rule, which a RETURN would pass by; "
                + $"write -j {chain.Policy6.Kind.ToString().ToUpperInvariant()} (the policy) instead");
        var taken = chain.Rules.Where((_, i) => i != replacing).Select(r => r.Rule.Name).OfType<string>().ToHashSet(StringComparer.Ordinal);
        var named = rule.Name is { } name && taken.Contains(name) ? new Rule(Unique(name, taken), rule.Match, rule.Verdict) : rule;
        var counts = command.Counters is var (packets, bytes) ? new IptablesCounts(packets, bytes) : default;
        return new TableRule(named, family, new TableCounter(counts, null));
    }

    private static string Unique(string name, HashSet<string> taken)
    {
        for (int n = 2; ; n++)
        {
            var suffix = $" #{n}";
            var candidate = (name.Length + suffix.Length > 256 ? name[..(256 - suffix.Length)].TrimEnd(' ') : name) + suffix;
            if (!taken.Contains(candidate)) return candidate;
        }
    }

    /// <summary>The chains from <paramref name="from"/> to <paramref name="target"/> through jumps and gotos, or null when none leads there.</summary>
    private List<string>? Leads(TableChain from, string target)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        List<string>? Walk(TableChain chain)
        {
            if (chain.Name == target) return [chain.Name];
            if (!seen.Add(chain.Name)) return null;
            foreach (var rule in chain.Rules)
            {
                if (rule.Rule.Verdict.Target is { } next && FindChain(next) is { } nextChain && Walk(nextChain) is { } rest)
                    return [chain.Name, .. rest];
            }
            return null;
        }
        return Walk(from);
    }

    private static string Count(int rules, IpFamily family) =>
        $"{rules} {(family == IpFamily.Ipv6 ? "ip6tables" : "iptables")} rule{(rules == 1 ? "" : "s")}";

    private static BpfilterException OutOfRange(string message) => new("RulePositionOutOfRange", FailureCategory.InvalidArgument, message);

    private static BpfilterException Invalid(string message) => new("IptablesCommandInvalid", FailureCategory.InvalidArgument, message);

    [GeneratedRegex(@"^(.*) #\d+\z", RegexOptions.Singleline)]
    private static partial Regex RepeatSuffix();
}

/// <summary>A rule of the table: the rule, the family whose packets it sees (null: both) and its counter.</summary>
internal sealed record TableRule(Rule Rule, IpFamily? Family, TableCounter Counter);

/// <summary>A chain of the table. A built-in one has a policy for each family and the ruleset chain it was read from, for its placement.</summary>
internal sealed class TableChain
{
    private TableChain(string name, bool builtIn, Chain? template)
    {
        Name = name;
        IsBuiltIn = builtIn;
        Template = template;
    }

    public static TableChain BuiltIn(string name, Chain? template) => new(name, true, template);

    public static TableChain User(string name) => new(name, false, null);

    public string Name { get; }
    public bool IsBuiltIn { get; }
    public Chain? Template { get; }
    public List<TableRule> Rules { get; } = [];
    public Verdict Policy4 { get; set; } = Verdict.Accept;
    public Verdict Policy6 { get; set; } = Verdict.Accept;
    public TableCounter Policy4Counter { get; set; } = TableCounter.Zero;
    public TableCounter Policy6Counter { get; set; } = TableCounter.Zero;

    public Verdict PolicyOf(IpFamily family) => family == IpFamily.Ipv4 ? Policy4 : Policy6;

    public TableCounter PolicyCounterOf(IpFamily family) => family == IpFamily.Ipv4 ? Policy4Counter : Policy6Counter;
}
