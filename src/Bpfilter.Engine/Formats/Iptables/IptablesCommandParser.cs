using System.Globalization;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Formats.Iptables;

/// <summary>
/// Reads one iptables command the way iptables' option parser does: the command option with the chain, number or
/// target it takes (optional ones only when the next argument is not an option), the general options, and every
/// other argument, in its order, as the rule specification that <see cref="IptablesRuleSpec"/> reads. Option values
/// are skipped by what each option takes, so a comment such as "-L" stays a comment.
/// </summary>
internal sealed class IptablesCommandParser
{
    private static readonly Dictionary<string, IptablesOperation> Commands = new(StringComparer.Ordinal)
    {
        ["-A"] = IptablesOperation.Append, ["--append"] = IptablesOperation.Append,
        ["-C"] = IptablesOperation.Check, ["--check"] = IptablesOperation.Check,
        ["-D"] = IptablesOperation.Delete, ["--delete"] = IptablesOperation.Delete,
        ["-I"] = IptablesOperation.Insert, ["--insert"] = IptablesOperation.Insert,
        ["-R"] = IptablesOperation.Replace, ["--replace"] = IptablesOperation.Replace,
        ["-L"] = IptablesOperation.List, ["--list"] = IptablesOperation.List,
        ["-S"] = IptablesOperation.ListRules, ["--list-rules"] = IptablesOperation.ListRules,
        ["-F"] = IptablesOperation.Flush, ["--flush"] = IptablesOperation.Flush,
        ["-Z"] = IptablesOperation.Zero, ["--zero"] = IptablesOperation.Zero,
        ["-N"] = IptablesOperation.NewChain, ["--new-chain"] = IptablesOperation.NewChain,
        ["-X"] = IptablesOperation.DeleteChain, ["--delete-chain"] = IptablesOperation.DeleteChain,
        ["-E"] = IptablesOperation.RenameChain, ["--rename-chain"] = IptablesOperation.RenameChain,
        ["-P"] = IptablesOperation.Policy, ["--policy"] = IptablesOperation.Policy,
    };

    /// <summary>Short options that take no value, which getopt lets one bundle (-nvL).</summary>
    private const string Bundleable = "vnxLSFZX46w";

    /// <summary>Short options that take a value: they may end a bundle (-vA INPUT).</summary>
    private const string TakesValue = "ACDIRNPEtW";

    /// <summary>
    /// Rule-specification options that take a value (--tcp-flags takes two). Any other, known or not, takes none
    /// here: the rule's reader then names an unknown one rather than its value.
    /// </summary>
    private static readonly HashSet<string> SpecOptionsWithValue = new(StringComparer.Ordinal)
    {
        "-s", "--source", "--src", "-d", "--destination", "--dst", "-i", "--in-interface", "-o", "--out-interface", "-p", "--protocol",
        "-m", "--match", "-j", "--jump", "-g", "--goto", "--sport", "--source-port", "--dport", "--destination-port", "--sports",
        "--source-ports", "--dports", "--destination-ports", "--ports", "--tcp-flags", "--tcp-option", "--icmp-type", "--icmpv6-type",
        "--src-range", "--dst-range", "--length", "--dscp", "--dscp-class", "--ttl-eq", "--ttl-lt", "--ttl-gt", "--hl-eq", "--hl-lt",
        "--hl-gt", "--mark", "--limit", "--limit-burst", "--comment", "--reject-with", "--log-prefix", "--log-level",
    };

    private static readonly HashSet<string> UnsupportedCommands = new(StringComparer.Ordinal)
    {
        "-h", "--help", "-V", "--version", "-M", "--modprobe",
    };

    private readonly List<string> _args;
    private readonly IpFamily _defaultFamily;
    private int _next;

    private (IptablesOperation Operation, int At)? _command;
    private (IptablesOperation Operation, int At)? _second;
    private string? _chain, _newName, _policyText;
    private int? _ruleNumber;
    private bool _verbose, _numeric, _exact, _lineNumbers;
    private (int At, string Option)? _listOnlyOption;
    private IpFamily? _family;
    private int _familyAt;
    private (ulong, ulong)? _counters;
    private int _countersAt = -1;
    private readonly List<int> _spec = [];

    public IptablesCommandParser(IReadOnlyList<string> arguments, IpFamily family)
    {
        _args = Expand(arguments);
        _defaultFamily = family;
    }

    /// <summary>-nvL as -n -v -L, "--option=value" as two arguments, as getopt reads them.</summary>
    private static List<string> Expand(IReadOnlyList<string> arguments)
    {
        var result = new List<string>(arguments.Count);
        foreach (var arg in arguments)
        {
            if (arg.Length > 2 && arg[0] == '-' && arg[1] != '-'
                && arg[1..^1].All(c => Bundleable.Contains(c)) && (Bundleable.Contains(arg[^1]) || TakesValue.Contains(arg[^1])))
            {
                result.AddRange(arg[1..].Select(c => "-" + c));
                continue;
            }
            var equals = arg.IndexOf('=');
            if (arg.StartsWith("--", StringComparison.Ordinal) && equals > 2)
            {
                result.Add(arg[..equals]);
                result.Add(arg[(equals + 1)..]);
                continue;
            }
            result.Add(arg);
        }
        return result;
    }

    public IptablesCommand Parse()
    {
        while (_next < _args.Count)
        {
            int at = _next++;
            var arg = _args[at];
            if (Commands.TryGetValue(arg, out var operation))
            {
                ReadCommand(operation, at);
                continue;
            }
            switch (arg)
            {
                case "-t" or "--table":
                    var table = Value(at, "a table");
                    if (table != "filter")
                        throw Error(at + 1, arg, $"the table '{table}': Bpfilter runs iptables' filter table only (nat, mangle, raw and security change packets or connection tracking, which its programs do not)");
                    continue;
                case "-v" or "--verbose":
                    _verbose = true;
                    continue;
                case "-n" or "--numeric":
                    _numeric = true;
                    _listOnlyOption ??= (at, arg);
                    continue;
                case "-x" or "--exact":
                    _exact = true;
                    _listOnlyOption ??= (at, arg);
                    continue;
                case "--line-numbers":
                    _lineNumbers = true;
                    _listOnlyOption ??= (at, arg);
                    continue;
                case "-4" or "--ipv4" or "-6" or "--ipv6":
                    var family = arg.Contains('4') ? IpFamily.Ipv4 : IpFamily.Ipv6;
                    if (_family is { } other && other != family) throw Error(at, arg, $"-4 and -6 are both given (argument {_familyAt + 1})");
                    _family = family;
                    _familyAt = at;
                    continue;
                case "-w" or "--wait":
                    // iptables waits for its lock this long; Bpfilter's publishers wait for theirs (30 s) whatever is given.
                    if (_next < _args.Count && double.TryParse(_args[_next], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out _)) _next++;
                    continue;
                case "-W" or "--wait-interval":
                    Value(at, "microseconds");
                    continue;
                case "-c" or "--set-counters":
                    ReadCounters(at, arg);
                    continue;
            }
            if (UnsupportedCommands.Contains(arg) || arg.StartsWith("--modprobe", StringComparison.Ordinal))
                throw Error(at, arg, $"{arg} is not supported: Bpfilter reads the commands -A, -C, -D, -I, -R, -L, -S, -F, -Z, -N, -X, -E and -P");
            ReadSpecArgument(at);
        }
        return Build();
    }

    private void ReadCommand(IptablesOperation operation, int at)
    {
        if (_command is { } first)
        {
            // iptables lists and zeroes in one go (-L -Z); any other two commands are an error.
            bool listAndZero = (first.Operation, operation) is (IptablesOperation.List, IptablesOperation.Zero) or (IptablesOperation.Zero, IptablesOperation.List);
            if (!listAndZero || _second is not null)
                throw Error(at, _args[at], $"{_args[at]} cannot be combined with {_args[first.At]} (argument {first.At + 1}): one command at a time (separate commands with ';')");
            _second = (operation, at);
            if (operation == IptablesOperation.List) _command = (operation, at);
            // -L -Z: -L's chain and number, read next, name what both do.
            if (operation == IptablesOperation.Zero) return;
        }
        else _command = (operation, at);
        var option = _args[at];
        switch (operation)
        {
            case IptablesOperation.Append or IptablesOperation.Check or IptablesOperation.NewChain:
                _chain = Value(at, "a chain name");
                return;
            case IptablesOperation.Delete:
                _chain = Value(at, "a chain name");
                if (IsNumber(_next)) _ruleNumber = RuleNumber(_next++, option);
                return;
            case IptablesOperation.Insert:
                _chain = Value(at, "a chain name");
                if (IsNumber(_next)) _ruleNumber = RuleNumber(_next++, option);
                return;
            case IptablesOperation.Replace:
                _chain = Value(at, "a chain name");
                if (!IsNumber(_next)) throw Error(at, option, $"{option} needs a chain and the number of the rule to replace");
                _ruleNumber = RuleNumber(_next++, option);
                return;
            case IptablesOperation.List or IptablesOperation.ListRules or IptablesOperation.Zero:
                if (IsOperand(_next)) _chain = _args[_next++];
                if (_chain is not null && IsNumber(_next)) _ruleNumber = RuleNumber(_next++, option);
                return;
            case IptablesOperation.Flush or IptablesOperation.DeleteChain:
                if (IsOperand(_next)) _chain = _args[_next++];
                return;
            case IptablesOperation.RenameChain:
                _chain = Value(at, "the chain's name and its new name");
                _newName = Value(at, "the chain's new name");
                return;
            default:
                _chain = Value(at, "a chain name and ACCEPT or DROP");
                _policyText = Value(at, "ACCEPT or DROP");
                return;
        }
    }

    private void ReadCounters(int at, string option)
    {
        var values = new ulong[2];
        for (int i = 0; i < 2; i++)
        {
            var text = Value(at, "packets and bytes");
            if (!ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out values[i]))
                throw Error(_next - 1, option, $"'{text}' is not a count: {option} takes two numbers, packets and bytes");
        }
        _counters = (values[0], values[1]);
        _countersAt = at;
    }

    /// <summary>An argument of the rule specification, with the values its option takes.</summary>
    private void ReadSpecArgument(int at)
    {
        _spec.Add(at);
        var arg = _args[at];
        if (!SpecOptionsWithValue.Contains(arg)) return;
        int values = arg == "--tcp-flags" ? 2 : 1;
        for (int i = 0; i < values && _next < _args.Count; i++) _spec.Add(_next++);
    }

    private IptablesCommand Build()
    {
        if (_command is not { } command)
            throw Error(0, null, _args.Count == 0 ? "no command given: write one such as -A INPUT ... or -L" : "no command given: the arguments need one of -A, -C, -D, -I, -R, -L, -S, -F, -Z, -N, -X, -E or -P");
        var operation = command.Operation;
        var option = _args[command.At];
        bool takesRule = operation is IptablesOperation.Append or IptablesOperation.Check or IptablesOperation.Insert or IptablesOperation.Replace
            || operation == IptablesOperation.Delete && _ruleNumber is null;
        if (!takesRule && _spec.Count > 0)
        {
            var stray = _spec[0];
            throw Error(stray, _args[stray], _args[stray].StartsWith('-') || _args[stray] == "!"
                ? $"{_args[stray]} is not an option of {option}: rule options go with -A, -C, -D, -I and -R"
                : $"'{_args[stray]}' is not an argument {option} takes");
        }
        if (_listOnlyOption is { } listOnly && operation != IptablesOperation.List)
            throw Error(listOnly.At, listOnly.Option, $"{listOnly.Option} is an option of -L, not of {option}");
        if (_counters is not null && operation is not (IptablesOperation.Append or IptablesOperation.Insert or IptablesOperation.Replace))
            throw Error(_countersAt, _args[_countersAt], $"{_args[_countersAt]} sets the counters of a rule that -A, -I or -R makes, not of {option}");
        var family = _family ?? _defaultFamily;
        if (_chain is { } chain && operation != IptablesOperation.NewChain) CheckChainName(chain, command.At + 1, option);
        Verdict? policy = null;
        if (operation == IptablesOperation.Policy)
        {
            policy = _policyText switch
            {
                "ACCEPT" => Verdict.Accept,
                "DROP" => Verdict.Drop,
                _ => throw Error(command.At + 2, option, $"'{_policyText}' is not a policy: a built-in chain's policy is ACCEPT or DROP"),
            };
        }
        if (operation == IptablesOperation.NewChain) CheckNewChainName(_chain!, command.At + 1, option);
        if (operation == IptablesOperation.RenameChain) CheckNewChainName(_newName!, command.At + 2, option);
        var rules = takesRule ? ReadRules(operation, command.At, family) : [];
        return new IptablesCommand
        {
            Operation = operation,
            Family = family,
            Chain = _chain,
            RuleNumber = _ruleNumber,
            Rules = rules,
            Counters = _counters,
            NewName = _newName,
            Policy = policy,
            ListOptions = new IptablesListOptions(_verbose, _numeric, _exact, _lineNumbers),
            ZeroAfterListing = _second is not null,
            Arguments = _args,
        };
    }

    /// <summary>
    /// The rule specification as rules: one per source and destination of comma lists (-s a,b), as iptables makes
    /// them, each read by <see cref="IptablesRuleSpec"/>; an error points at the argument of this command.
    /// </summary>
    private List<Rule> ReadRules(IptablesOperation operation, int commandAt, IpFamily family)
    {
        var spec = _spec.Select(i => _args[i]).ToList();
        var lists = new List<(int Position, string[] Items)>();
        for (int i = 0; i + 1 < spec.Count; i++)
        {
            if (spec[i] is "-s" or "--source" or "--src" or "-d" or "--destination" or "--dst" && (i == 0 || spec[i - 1] != "!") && spec[i + 1].Contains(','))
                lists.Add((i + 1, spec[i + 1].Split(',')));
        }
        if (lists.Count > 0 && operation == IptablesOperation.Replace)
            throw Error(_spec[lists[0].Position], spec[lists[0].Position - 1], "-R replaces one rule: give one source and one destination address, not a list");
        IEnumerable<List<string>> variants = [spec];
        foreach (var (position, items) in lists)
            variants = variants.SelectMany(v => items.Select(item => new List<string>(v) { [position] = item }));
        var rules = new List<Rule>();
        foreach (var variant in variants)
        {
            try
            {
                rules.Add(IptablesRuleSpec.Parse(["-A", _chain!, .. variant], family).Rule);
            }
            catch (IptablesRuleSpecException e)
            {
                // Positions 0 and 1 are the "-A CHAIN" put before the specification.
                int at = e.ArgumentIndex >= 2 ? _spec[Math.Min(e.ArgumentIndex - 2, _spec.Count - 1)] : commandAt;
                throw new IptablesRuleSpecException(at, e.Option, e.Reason);
            }
        }
        return rules;
    }

    private void CheckChainName(string chain, int at, string option)
    {
        try
        {
            Names.CheckChainName(chain);
        }
        catch (RulesetValidationException e)
        {
            throw Error(at, option, e.Message);
        }
    }

    /// <summary>iptables refuses names longer than 28 characters, starting with '-' or '!', or those of targets.</summary>
    private void CheckNewChainName(string name, int at, string option)
    {
        if (name.Length > IptablesRuleSpec.MaxChainNameLength)
            throw Error(at, option, $"the chain name '{name}' is longer than iptables' {IptablesRuleSpec.MaxChainNameLength} characters");
        if (name.StartsWith('-') || name.StartsWith('!'))
            throw Error(at, option, $"'{name}' is not a chain name: it cannot start with '-' or '!'");
        if (IptablesNames.BuiltInTargets.Contains(name) || IptablesNames.UnsupportedTargets.Contains(name) || IptablesSaveOptions.BuiltInChains.Contains(name))
            throw Error(at, option, $"'{name}' is the name of an iptables target or built-in chain, so it cannot name a chain of your own");
        CheckChainName(name, at, option);
    }

    private bool IsOperand(int at) => at < _args.Count && _args[at] != "!" && !_args[at].StartsWith('-');

    private bool IsNumber(int at) => at < _args.Count && _args[at].Length > 0 && _args[at].All(char.IsAsciiDigit);

    private int RuleNumber(int at, string option)
    {
        if (!int.TryParse(_args[at], NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number < 1)
            throw Error(at, option, $"'{_args[at]}' is not a rule number: rules are numbered from 1");
        return number;
    }

    private string Value(int at, string what)
    {
        if (_next >= _args.Count) throw Error(at, _args[at], $"{_args[at]} needs {what}");
        return _args[_next++];
    }

    private BpfilterException Error(int at, string? option, string reason) =>
        new("IptablesCommandInvalid", FailureCategory.InvalidArgument, $"argument {at + 1}{(option is null ? "" : $" ({option})")}: {reason}");
}
