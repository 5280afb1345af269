namespace Bpfilter.Engine.Rules;

/// <summary>
/// A deployable unit: a name (the deployment name), its hooked chains, the user chains they jump to, and the named
/// sets their rules refer to. A ruleset that exists is valid: every jump, goto and set reference resolves, no chain
/// jumps into itself, and every set fits where it is used.
/// </summary>
public sealed record Ruleset
{
    public Ruleset(string name, IReadOnlyList<Chain> chains, string? sourcePath = null,
        IReadOnlyList<UserChain>? userChains = null, IReadOnlyList<NamedSet>? sets = null)
    {
        Names.CheckDeploymentName(name);
        userChains ??= [];
        sets ??= [];
        if (chains.Count == 0) throw new RulesetValidationException($"ruleset '{name}' has no chains", "chains");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var chainName in chains.Select(c => c.Name).Concat(userChains.Select(c => c.Name)))
        {
            if (!seen.Add(chainName)) throw new RulesetValidationException($"ruleset '{name}' has two chains named '{chainName}'", "chains", chain: chainName);
        }
        var clash = chains.GroupBy(c => (c.Hook, c.Interface, c.Cgroup, c.Priority, c.NetworkNamespace)).FirstOrDefault(g => g.Count() > 1);
        if (clash is not null)
            throw new RulesetValidationException(
                $"chains {string.Join(" and ", clash.Select(c => $"'{c.Name}'"))} both attach at {clash.First().AttachPoint}: "
                + "put their rules in one chain", "chains", chain: clash.Skip(1).First().Name);
        var setNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var set in sets)
        {
            if (!setNames.Add(set.Name)) throw new RulesetValidationException($"ruleset '{name}' has two sets named '{set.Name}'", "sets");
        }
        Name = name;
        Chains = new ValueList<Chain>(chains);
        UserChains = new ValueList<UserChain>(userChains);
        Sets = new ValueList<NamedSet>(sets);
        SourcePath = sourcePath;
        CheckReferences();
    }

    public string Name { get; }
    public ValueList<Chain> Chains { get; }
    public ValueList<UserChain> UserChains { get; }
    public ValueList<NamedSet> Sets { get; }

    /// <summary>The file the ruleset was read from, if any.</summary>
    public string? SourcePath { get; }

    public UserChain? FindUserChain(string name) => UserChains.FirstOrDefault(c => c.Name == name);
    public NamedSet? FindSet(string name) => Sets.FirstOrDefault(s => s.Name == name);

    /// <summary>The user chains that <paramref name="rules"/> reach through jumps and gotos, each once, in the order first reached.</summary>
    public IReadOnlyList<UserChain> Reachable(IReadOnlyList<Rule> rules)
    {
        var result = new List<UserChain>();
        void Visit(IReadOnlyList<Rule> from)
        {
            foreach (var rule in from)
            {
                if (rule.Verdict.Target is { } target && FindUserChain(target) is { } chain && !result.Contains(chain))
                {
                    result.Add(chain);
                    Visit(chain.Rules);
                }
            }
        }
        Visit(rules);
        return result;
    }

    private void CheckReferences()
    {
        var hooked = Chains.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var (chainName, rules) in Chains.Select(c => (c.Name, (IReadOnlyList<Rule>)c.Rules)).Concat(UserChains.Select(c => (c.Name, (IReadOnlyList<Rule>)c.Rules))))
        {
            for (int i = 0; i < rules.Count; i++)
            {
                var rule = rules[i];
                if (rule.Verdict.Target is { } target)
                {
                    if (hooked.Contains(target))
                        throw new RulesetValidationException(
                            $"chain '{chainName}' rule {i + 1}: '{target}' is attached at a hook; a {Verdict.Name(rule.Verdict.Kind)} can only go to a chain without a hook", "action", i, chainName);
                    if (FindUserChain(target) is null)
                        throw new RulesetValidationException($"chain '{chainName}' rule {i + 1}: there is no chain '{target}' to {Verdict.Name(rule.Verdict.Kind)} to", "action", i, chainName);
                }
                CheckSet(chainName, i, rule, rule.Match.Source, "source");
                CheckSet(chainName, i, rule, rule.Match.Destination, "destination");
                CheckSet(chainName, i, rule.Match.SourcePort, "source-port");
                CheckSet(chainName, i, rule.Match.DestinationPort, "destination-port");
            }
        }
        // Jumps must not loop: a depth-first walk from each user chain finds a cycle, names it, and blames the rule that closes it.
        var state = new Dictionary<string, bool>(StringComparer.Ordinal); // false: on the path, true: done
        var path = new List<string>();
        void Walk(UserChain chain)
        {
            state[chain.Name] = false;
            path.Add(chain.Name);
            for (int i = 0; i < chain.Rules.Count; i++)
            {
                if (chain.Rules[i].Verdict.Target is not { } target) continue;
                if (state.TryGetValue(target, out var done))
                {
                    if (done) continue;
                    var cycle = path.Skip(path.IndexOf(target)).Append(target);
                    throw new RulesetValidationException($"the chains jump in a loop: {string.Join(" -> ", cycle)}", "action", i, chain.Name);
                }
                Walk(FindUserChain(target)!);
            }
            path.RemoveAt(path.Count - 1);
            state[chain.Name] = true;
        }
        foreach (var chain in UserChains.Where(c => !state.ContainsKey(c.Name))) Walk(chain);
    }

    private void CheckSet(string chain, int index, Rule rule, AddressMatch? match, string field)
    {
        if (match?.Set is not { } setName) return;
        var set = FindSet(setName) ?? throw new RulesetValidationException($"chain '{chain}' rule {index + 1}: there is no set '{setName}'", field, index, chain);
        if (!SetTypeNames.IsAddress(set.Type))
            throw new RulesetValidationException($"chain '{chain}' rule {index + 1}: {field} needs a set of addresses, and '{setName}' is a set of {SetTypeNames.Format(set.Type)}", field, index, chain);
        if (rule.Match.ImpliedFamily is { } family && family != set.Family)
            throw new RulesetValidationException(
                $"chain '{chain}' rule {index + 1}: the rule is {Match.FamilyName(family)}, but set '{setName}' holds {SetTypeNames.Format(set.Type)}", field, index, chain);
    }

    private void CheckSet(string chain, int index, PortMatch? match, string field)
    {
        if (match?.Set is not { } setName) return;
        var set = FindSet(setName) ?? throw new RulesetValidationException($"chain '{chain}' rule {index + 1}: there is no set '{setName}'", field, index, chain);
        if (set.Type != SetType.Port)
            throw new RulesetValidationException($"chain '{chain}' rule {index + 1}: {field} needs a set of ports, and '{setName}' is a set of {SetTypeNames.Format(set.Type)}", field, index, chain);
    }

    /// <summary>The family a rule applies to, counting the family of the sets it refers to; null for both.</summary>
    public IpFamily? FamilyOf(Rule rule) =>
        rule.Match.ImpliedFamily
        ?? (rule.Match.Source?.Set is { } s ? FindSet(s)?.Family : null)
        ?? (rule.Match.Destination?.Set is { } d ? FindSet(d)?.Family : null);
}
