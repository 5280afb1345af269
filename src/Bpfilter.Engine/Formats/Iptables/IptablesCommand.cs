using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Formats.Iptables;

/// <summary>What an iptables command does: one of its command options (-A, -C, -D, -I, -R, -L, -S, -F, -Z, -N, -X, -E, -P).</summary>
public enum IptablesOperation
{
    Append,
    Check,
    Delete,
    Insert,
    Replace,
    List,
    ListRules,
    Flush,
    Zero,
    NewChain,
    DeleteChain,
    RenameChain,
    Policy,
}

/// <summary>How -L and -S print: -v (counters), -n (numbers, not names), -x (exact counts) and --line-numbers.</summary>
public sealed record IptablesListOptions(bool Verbose = false, bool Numeric = false, bool Exact = false, bool LineNumbers = false);

/// <summary>
/// One iptables command of the filter table, read from its arguments as iptables reads them (see <see cref="Parse"/>).
/// </summary>
public sealed record IptablesCommand
{
    /// <summary>The command option.</summary>
    public required IptablesOperation Operation { get; init; }

    /// <summary>The family the command is for: IPv4 (iptables) or IPv6 (ip6tables, or -6).</summary>
    public required IpFamily Family { get; init; }

    /// <summary>The chain the command names; null for -L, -S, -F, -Z and -X of every chain.</summary>
    public string? Chain { get; init; }

    /// <summary>The 1-based rule number of -I, -R, -D NUMBER, -L/-S/-Z CHAIN NUMBER.</summary>
    public int? RuleNumber { get; init; }

    /// <summary>
    /// The rules of -A, -C, -D, -I and -R: one, or one per pair of addresses when -s or -d lists several (as iptables
    /// makes them, sources outermost).
    /// </summary>
    public IReadOnlyList<Rule> Rules { get; init; } = [];

    /// <summary>The packets and bytes -c (--set-counters) gives a rule of -A, -I or -R.</summary>
    public (ulong Packets, ulong Bytes)? Counters { get; init; }

    /// <summary>The new name of -E.</summary>
    public string? NewName { get; init; }

    /// <summary>The policy of -P: accept or drop.</summary>
    public Verdict? Policy { get; init; }

    public IptablesListOptions ListOptions { get; init; } = new();

    /// <summary>-L -Z: the counters are zeroed once listed.</summary>
    public bool ZeroAfterListing { get; init; }

    /// <summary>The arguments as given, for messages.</summary>
    public IReadOnlyList<string> Arguments { get; init; } = [];

    /// <summary>True when the command changes the table's chains, rules or policies (not -C, -L, -S, -Z).</summary>
    public bool Changes => Operation is IptablesOperation.Append or IptablesOperation.Delete or IptablesOperation.Insert
        or IptablesOperation.Replace or IptablesOperation.Flush or IptablesOperation.NewChain or IptablesOperation.DeleteChain
        or IptablesOperation.RenameChain or IptablesOperation.Policy;

    /// <summary>True when the command zeroes counters (-Z, or -L -Z).</summary>
    public bool Zeroes => Operation == IptablesOperation.Zero || ZeroAfterListing;

    /// <summary>The command as one line, its arguments quoted as a shell would need them.</summary>
    public override string ToString() => IptablesCommandLine.Join(Arguments);

    /// <summary>
    /// Reads the arguments of one command, as typed after "iptables" (or "ip6tables", for <paramref name="family"/>
    /// IPv6): the command and its chain, rule number or rule specification, in any order with the options -t filter,
    /// -v, -n, -x, --line-numbers, -4, -6, -c, -w and -W; short options may be bundled (-nvL) and long ones take
    /// "--option=value". Anything else is an error naming the argument: a BpfilterException IptablesCommandInvalid
    /// for the command's own options, IptablesRuleInvalid (<see cref="IptablesRuleSpecException"/>) for the rule.
    /// </summary>
    public static IptablesCommand Parse(IReadOnlyList<string> arguments, IpFamily family)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        return new IptablesCommandParser(arguments, family).Parse();
    }

    /// <summary>
    /// Reads several commands separated by ";" arguments (typed as ';' in PowerShell); an error names the command.
    /// No command is read at all unless all of them are.
    /// </summary>
    public static IReadOnlyList<IptablesCommand> ParseBatch(IReadOnlyList<string> arguments, IpFamily family)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var groups = new List<List<string>> { new() };
        foreach (var argument in arguments)
        {
            if (argument == ";") groups.Add([]);
            else groups[^1].Add(argument);
        }
        groups.RemoveAll(g => g.Count == 0);
        return groups.Select((args, i) => InCommand(() => Parse(args, family),
            groups.Count == 1 ? IptablesCommandLine.Join(args) : $"command {i + 1} ({IptablesCommandLine.Join(args)})")).ToList();
    }

    /// <summary>
    /// Reads a script: one command per line, with the shell's quoting (see <see cref="IptablesCommandLine"/>),
    /// "iptables" or "ip6tables" first if wanted (ip6tables makes the line IPv6), '#' comments and blank lines.
    /// Errors name <paramref name="source"/> and the line.
    /// </summary>
    public static IReadOnlyList<IptablesCommand> ParseLines(IEnumerable<string> lines, IpFamily family, string source = "line")
    {
        ArgumentNullException.ThrowIfNull(lines);
        var commands = new List<IptablesCommand>();
        int lineNumber = 0;
        foreach (var line in lines)
        {
            lineNumber++;
            IReadOnlyList<IReadOnlyList<string>> parts;
            try
            {
                parts = IptablesCommandLine.Split(line);
            }
            catch (BpfilterException e)
            {
                throw At(e, $"{source} {lineNumber}");
            }
            foreach (var words in parts)
            {
                var lineFamily = family;
                var args = words;
                if (args.Count > 0 && IptablesCommandLine.ToolFamily(args[0]) is { } tool)
                {
                    lineFamily = tool;
                    args = args.Skip(1).ToList();
                }
                if (args.Count == 0) continue;
                commands.Add(InCommand(() => Parse(args, lineFamily), $"{source} {lineNumber}"));
            }
        }
        return commands;
    }

    private static IptablesCommand InCommand(Func<IptablesCommand> parse, string where)
    {
        try
        {
            return parse();
        }
        catch (BpfilterException e)
        {
            throw At(e, where);
        }
    }

    /// <summary>The same error (id and category), its message led by where it happened.</summary>
    internal static BpfilterException At(BpfilterException e, string where) => new(e.ErrorId, e.Category, $"{where}: {e.Message}", e);
}
