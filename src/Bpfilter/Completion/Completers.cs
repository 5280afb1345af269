using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Completion;

/// <summary>Completes from a fixed or computed list of words, by prefix, case-insensitively.</summary>
public abstract class WordCompleter : IArgumentCompleter
{
    protected abstract IEnumerable<string> Candidates();

    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        IEnumerable<string> words;
        try
        {
            words = Candidates().ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or Engine.BpfilterException)
        {
            words = [];
        }
        return words.Where(w => w.StartsWith(wordToComplete, StringComparison.OrdinalIgnoreCase))
            .Select(w => new CompletionResult(w, w, CompletionResultType.ParameterValue, w));
    }
}

/// <summary>Names of deployments pinned under /sys/fs/bpf/bpfilter.</summary>
public sealed class DeploymentNameCompleter : WordCompleter
{
    protected override IEnumerable<string> Candidates() => Deployments.Names();
}

/// <summary>Named network namespaces (/run/netns), as 'ip netns list' shows them.</summary>
public sealed class NetworkNamespaceCompleter : WordCompleter
{
    protected override IEnumerable<string> Candidates() =>
        Directory.Exists(NetworkNamespace.NamedDirectory)
            ? Directory.EnumerateFiles(NetworkNamespace.NamedDirectory).Select(Path.GetFileName).OfType<string>().Order()
            : [];
}

/// <summary>Protocol names the rule language knows.</summary>
public sealed class ProtocolCompleter : WordCompleter
{
    protected override IEnumerable<string> Candidates() => IpProtocol.KnownNames;
}

/// <summary>Interfaces of this network namespace (/sys/class/net).</summary>
public sealed class InterfaceCompleter : WordCompleter
{
    protected override IEnumerable<string> Candidates() =>
        Directory.Exists("/sys/class/net") ? Directory.EnumerateFileSystemEntries("/sys/class/net").Select(Path.GetFileName).OfType<string>().Order() : [];
}

/// <summary>Hooks in their YAML spelling.</summary>
public sealed class HookCompleter : WordCompleter
{
    protected override IEnumerable<string> Candidates() => HookNames.Names;
}

/// <summary>ICMP and ICMPv6 type names.</summary>
public sealed class IcmpTypeCompleter : WordCompleter
{
    protected override IEnumerable<string> Candidates() => IcmpTypes.Names;
}

/// <summary>Verdicts in the rule language's spelling (jump and goto take a chain after them).</summary>
public sealed class VerdictCompleter : WordCompleter
{
    protected override IEnumerable<string> Candidates() => ["accept", "drop", "reject", "continue", "return", "log"];
}

/// <summary>Set names of the deployment named by the command's -Name (read from its manifest; nothing when it cannot be read).</summary>
public sealed class SetNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        if (fakeBoundParameters["Name"] is not string deployment || !Names.IsDeploymentName(deployment)) return [];
        try
        {
            return DeploymentSets.Get(deployment).Select(s => s.Name)
                .Where(n => n.StartsWith(wordToComplete, StringComparison.OrdinalIgnoreCase))
                .Select(n => new CompletionResult(n, n, CompletionResultType.ParameterValue, n)).ToList();
        }
        catch (Engine.BpfilterException)
        {
            return [];
        }
    }
}

/// <summary>Reject kinds in iptables' spelling (tcp-reset, port-unreachable, ...).</summary>
public sealed class RejectWithCompleter : WordCompleter
{
    protected override IEnumerable<string> Candidates() => RejectWithNames.Names.Order();
}

/// <summary>The kinds of fragment condition: first, not-first.</summary>
public sealed class FragmentCompleter : WordCompleter
{
    protected override IEnumerable<string> Candidates() => ["first", "not-first"];
}

/// <summary>Set types in the ruleset language's spelling: ipv4-addr, ipv4-net, ipv6-addr, ipv6-net, port.</summary>
public sealed class SetTypeCompleter : WordCompleter
{
    protected override IEnumerable<string> Candidates() => SetTypeNames.Names;
}

/// <summary>Connection states: new, established, related, invalid, untracked.</summary>
public sealed class CtStateCompleter : WordCompleter
{
    protected override IEnumerable<string> Candidates() => CtStateNames.Names;
}

/// <summary>Connection directions: original, reply.</summary>
public sealed class CtDirectionCompleter : WordCompleter
{
    protected override IEnumerable<string> Candidates() => ["original", "reply"];
}
