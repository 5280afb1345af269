using System.Globalization;
using Bpfilter.Engine.Rules;
using YamlDotNet.RepresentationModel;

namespace Bpfilter.Engine.Formats;

public static partial class YamlRulesetReader
{
    /// <summary>
    /// Turns the node model of one file into a ruleset. Every error, the model's own validation errors included, is a
    /// <see cref="RulesetFormatException"/> at the node it is about: the chains and rules read are kept with their nodes
    /// so that an error of the <see cref="Ruleset"/> constructor (a jump to nowhere, a set of the wrong type, a loop)
    /// lands on the rule that has it.
    /// </summary>
    private sealed partial class Context(string file)
    {
        private readonly List<(string Name, YamlMappingNode Node, IList<YamlNode> Rules)> _chains = [];

        public Ruleset ReadRuleset(YamlNode root)
        {
            var map = Mapping(root, "the ruleset");
            CheckKeys(map, RulesetKeys, "ruleset");
            var version = Required(map, "bpfilter", "the ruleset");
            if (Scalar(version, "bpfilter") != FormatVersion.ToString(CultureInfo.InvariantCulture))
                throw Error(version, $"bpfilter: {Scalar(version, "bpfilter")} is not a format version this module reads (it reads {FormatVersion})");
            var nameNode = Required(map, "name", "the ruleset");
            var name = Scalar(nameNode, "name");
            Guard(nameNode, () => Names.CheckDeploymentName(name));
            var sets = Optional(map, "sets") is { } setsNode ? ReadSets(setsNode) : [];
            var chainsNode = Required(map, "chains", "the ruleset");
            var chains = new List<Chain>();
            var userChains = new List<UserChain>();
            foreach (var chainNode in Sequence(chainsNode, "chains").Children)
            {
                var chainMap = Mapping(chainNode, "a chain");
                if (Optional(chainMap, "hook") is null) userChains.Add(ReadUserChain(chainMap));
                else chains.Add(ReadChain(chainMap));
            }
            if (chains.Count == 0 && userChains.Count > 0)
                throw Error(chainsNode, $"ruleset '{name}' has no chain with a hook: chains without one run only when a chain with a hook jumps to them");
            try
            {
                return new Ruleset(name, chains, FullPath(file), userChains, sets);
            }
            catch (RulesetValidationException e)
            {
                throw Error(Locate(e) ?? chainsNode, e.Message, e);
            }
        }

        /// <summary>The node a ruleset-wide error is about: the rule of <see cref="RulesetValidationException.Chain"/>, or that chain's name.</summary>
        private YamlNode? Locate(RulesetValidationException e)
        {
            if (e.Chain is not { } chainName) return null;
            var named = _chains.Where(c => c.Name == chainName).ToList();
            if (named.Count == 0) return null;
            // A duplicate name is the fault of the second chain that has it.
            var (_, node, rules) = named.Count > 1 ? named[1] : named[0];
            if (e.RuleIndex is { } i && i < rules.Count) return RuleField(rules[i], e.Field);
            return Optional(node, "name") ?? node;
        }

        /// <summary>The value of <paramref name="field"/> in a rule or in its match; else the rule's name, else the rule.</summary>
        private static YamlNode RuleField(YamlNode ruleNode, string? field)
        {
            if (ruleNode is not YamlMappingNode rule) return ruleNode;
            if (field is not null && Optional(rule, field) is { } value) return value;
            if (field is not null && Optional(rule, "match") is YamlMappingNode match && Optional(match, field) is { } condition) return condition;
            return Optional(rule, "name") ?? rule;
        }

        /// <summary>The ruleset's source path; null when the name given to <see cref="Read"/> is no path at all.</summary>
        private static string? FullPath(string file)
        {
            try
            {
                return Path.GetFullPath(file);
            }
            catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
            {
                return null;
            }
        }

        private List<NamedSet> ReadSets(YamlNode node)
        {
            var map = Mapping(node, "sets");
            var sets = new List<NamedSet>();
            foreach (var (keyNode, valueNode) in map.Children)
            {
                var name = Scalar(keyNode, "a set name");
                Guard(keyNode, () => Names.CheckSetName(name));
                var owner = $"set '{name}'";
                var setMap = Mapping(valueNode, owner);
                CheckKeys(setMap, SetKeys, "set");
                var typeNode = Required(setMap, "type", owner);
                var typeText = Scalar(typeNode, "type");
                var type = Guard(typeNode, () => SetTypeNames.Parse(typeText));
                var empty = new NamedSet(name, type, []);
                var elements = new List<SetElement>();
                var distinct = new HashSet<SetElement>();
                if (Optional(setMap, "elements") is { } elementsNode)
                {
                    foreach (var item in Sequence(elementsNode, "elements").Children)
                    {
                        var text = Scalar(item, "an element");
                        var element = Guard(item, () => SetElement.Parse(type, text), owner);
                        Guard(item, () => empty.Check(element));
                        if (distinct.Add(element) && distinct.Count > NamedSet.MaxElements)
                            throw Error(item, $"{owner} has more than {NamedSet.MaxElements} elements, the limit per set" + SeeHelp);
                        elements.Add(element);
                    }
                }
                sets.Add(Guard(valueNode, () => new NamedSet(name, type, elements)));
            }
            return sets;
        }

        private Chain ReadChain(YamlMappingNode map)
        {
            CheckKeys(map, ChainKeys, "chain");
            var nameNode = Required(map, "name", "a chain");
            var name = Scalar(nameNode, "name");
            var hookNode = Required(map, "hook", $"chain '{name}'");
            var hookText = Scalar(hookNode, "hook");
            if (!HookNames.TryParse(hookText, out var hook))
                throw Error(hookNode, $"hook: '{hookText}' is not one of {string.Join(", ", HookNames.Names)}");
            var interfaceName = OptionalScalar(map, "interface");
            var cgroup = OptionalScalar(map, "cgroup");
            var networkNamespace = OptionalScalar(map, "namespace");
            var mode = Optional(map, "mode") is { } modeNode ? Enum<XdpMode>(modeNode, "mode") : XdpMode.Native;
            var order = Optional(map, "order") is { } orderNode ? Enum<TcxOrder>(orderNode, "order") : TcxOrder.Last;
            int? priority = null;
            if (Optional(map, "priority") is { } priorityNode)
            {
                var text = Scalar(priorityNode, "priority");
                priority = int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var p) ? p
                    : throw Error(priorityNode, $"priority: '{text}' is not a whole number from {int.MinValue + 2} to {int.MaxValue - 1}");
            }
            var policy = Optional(map, "policy") is { } policyNode ? Guard(policyNode, () => Verdict.Parse(Scalar(policyNode, "policy"))) : Verdict.Accept;
            var (ruleNodes, rules) = ReadRules(map, name);
            try
            {
                return new Chain(name, hook, interfaceName, policy, rules, mode, priority, order, cgroup, networkNamespace);
            }
            catch (RulesetValidationException e)
            {
                YamlNode where = e.RuleIndex is { } i ? RuleField(ruleNodes[i], e.Field)
                    : e.Field is { } field ? Optional(map, field) ?? (field == "name" ? nameNode : map) : nameNode;
                throw Error(where, e.Message, e);
            }
        }

        /// <summary>A chain without a hook: only a jump or goto runs it, so it takes nothing but a name and rules.</summary>
        private UserChain ReadUserChain(YamlMappingNode map)
        {
            var nameNode = Optional(map, "name");
            var label = nameNode is YamlScalarNode { Value: { Length: > 0 } n } ? $"chain '{n}'" : "a chain";
            CheckKeys(map, UserChainKeys, "chain", key => ChainKeys.Contains(key, StringComparer.Ordinal)
                ? $"{label} has no hook, so it is a user chain, run only by a jump or goto: it takes no '{key}' (give it a hook to attach it)"
                : $"'{key}' is not a chain key (expected one of: {string.Join(", ", ChainKeys)})");
            var name = Scalar(nameNode ?? throw Error(map, "a chain has no 'name' key"), "name");
            var (ruleNodes, rules) = ReadRules(map, name);
            try
            {
                return new UserChain(name, rules);
            }
            catch (RulesetValidationException e)
            {
                throw Error(e.RuleIndex is { } i ? RuleField(ruleNodes[i], e.Field) : nameNode, e.Message, e);
            }
        }

        private (IList<YamlNode> Nodes, List<Rule> Rules) ReadRules(YamlMappingNode chain, string chainName)
        {
            var nodes = Optional(chain, "rules") is { } rulesNode ? Sequence(rulesNode, "rules").Children : (IList<YamlNode>)[];
            _chains.Add((chainName, chain, nodes));
            return (nodes, nodes.Select(ReadRule).ToList());
        }

        private Rule ReadRule(YamlNode node)
        {
            var map = Mapping(node, "a rule");
            CheckKeys(map, RuleKeys, "rule");
            string? name = null;
            if (Optional(map, "name") is { } nameNode)
            {
                name = Scalar(nameNode, "name");
                Guard(nameNode, () => Names.CheckRuleName(name));
            }
            var match = Optional(map, "match") is { } matchNode ? ReadMatch(matchNode) : Match.Any;
            var verdict = ReadAction(Required(map, "action", name is null ? "a rule" : $"rule '{name}'"));
            return new Rule(name, match, verdict);
        }

        /// <summary>accept, drop, reject, continue, return or log; or one of { reject: KIND }, { log: PREFIX }, { jump: CHAIN }, { goto: CHAIN }.</summary>
        private Verdict ReadAction(YamlNode node)
        {
            if (node is YamlScalarNode)
            {
                var text = Scalar(node, "action");
                return Guard(node, () => Verdict.Parse(text));
            }
            if (node is not YamlMappingNode map)
                throw Error(node, $"action must be a verdict such as drop, or a mapping of one key such as {{ jump: CHAIN }}, not {Describe(node)}");
            CheckKeys(map, ActionKeys, "action");
            if (map.Children.Count != 1)
                throw Error(map.Children.Count == 0 ? map : map.Children.Keys.ElementAt(1),
                    "an action mapping has exactly one key: { reject: KIND }, { log: PREFIX }, { jump: CHAIN } or { goto: CHAIN }");
            var (keyNode, valueNode) = map.Children.First();
            var key = ((YamlScalarNode)keyNode).Value!;
            var value = Scalar(valueNode, key);
            return key switch
            {
                "reject" => Guard(valueNode, () => Verdict.Reject(RejectWithNames.Parse(value)), "reject"),
                "log" => Guard(valueNode, () => Verdict.Log(value)),
                "jump" => Guard(valueNode, () => Verdict.Jump(value), "jump"),
                _ => Guard(valueNode, () => Verdict.Goto(value), "goto"),
            };
        }

        private T Enum<T>(YamlNode node, string key) where T : struct, System.Enum
        {
            var text = Scalar(node, key);
            var names = System.Enum.GetNames<T>().Select(n => n.ToLowerInvariant()).ToArray();
            if (names.Contains(text, StringComparer.Ordinal)) return System.Enum.Parse<T>(text, ignoreCase: true);
            throw Error(node, $"{key}: '{text}' is not one of {string.Join(", ", names)}");
        }

        // ---- Nodes ---------------------------------------------------------------------------------------------------

        private YamlMappingNode Mapping(YamlNode node, string what) =>
            node as YamlMappingNode ?? throw Error(node, $"{what} must be a mapping of keys to values, not {Describe(node)}");

        private YamlSequenceNode Sequence(YamlNode node, string key) =>
            node as YamlSequenceNode ?? throw Error(node, $"{key} must be a list, not {Describe(node)}");

        /// <summary>
        /// The text of a single value. A value with a local tag is refused: YAML reads an unquoted leading '!' as a tag,
        /// so an unquoted negation such as !10.0.0.0/8 would otherwise turn into an empty value without a word.
        /// </summary>
        private string Scalar(YamlNode node, string key)
        {
            if (node is not YamlScalarNode { Value: { } value } scalar) throw Error(node, $"{key} must be a single value, not {Describe(node)}");
            if (!scalar.Tag.IsEmpty && scalar.Tag.Value.StartsWith('!'))
            {
                var meant = scalar.Tag.Value == "!" ? "!" + value : scalar.Tag.Value + (value.Length > 0 ? " " + value : "");
                throw Error(node, $"{key}: YAML reads an unquoted '!' as the start of a tag, not as a negation: write \"{meant}\" in quotes");
            }
            return value;
        }

        private YamlNode Required(YamlMappingNode map, string key, string owner) =>
            Optional(map, key) ?? throw Error(map, $"{owner} has no '{key}' key");

        private string? OptionalScalar(YamlMappingNode map, string key) => Optional(map, key) is { } node ? Scalar(node, key) : null;

        private static YamlNode? Optional(YamlMappingNode map, string key) =>
            map.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value : null;

        /// <summary>Refuses a key not in <paramref name="allowed"/>, at the key; <paramref name="unknown"/> words the refusal when given.</summary>
        private void CheckKeys(YamlMappingNode map, string[] allowed, string owner, Func<string, string>? unknown = null)
        {
            foreach (var key in map.Children.Keys)
            {
                if (key is not YamlScalarNode { Value: { } name }) throw Error(key, $"{owner} keys must be plain words");
                if (!allowed.Contains(name, StringComparer.Ordinal))
                    throw Error(key, unknown?.Invoke(name) ?? $"'{name}' is not a {owner} key (expected one of: {string.Join(", ", allowed)})");
            }
        }

        /// <summary>
        /// Runs a model constructor or parser and puts the node's position on its validation error, after
        /// "<paramref name="key"/>: " when the message does not already start with the key.
        /// </summary>
        private T Guard<T>(YamlNode node, Func<T> build, string? key = null)
        {
            try
            {
                return build();
            }
            catch (RulesetValidationException e)
            {
                var message = key is null || e.Message.StartsWith(key, StringComparison.Ordinal) ? e.Message : $"{key}: {e.Message}";
                throw Error(node, message, e);
            }
        }

        private void Guard(YamlNode node, Action check) => Guard(node, () => { check(); return 0; });

        private RulesetFormatException Error(YamlNode node, string reason, Exception? inner = null) =>
            new(file, node.Start.Line, node.Start.Column, reason, inner);

        private static string Describe(YamlNode node) => node switch
        {
            YamlMappingNode => "a mapping",
            YamlSequenceNode => "a list",
            YamlScalarNode { Value: null or "" } => "an empty value",
            YamlScalarNode s => $"'{s.Value}'",
            _ => "an alias",
        };
    }
}
