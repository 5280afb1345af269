using System.Collections;
using System.Management.Automation;
using Bpfilter.Completion;
using Bpfilter.Engine;
using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Formats.Iptables;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Commands;

/// <summary>
/// Runs iptables commands (given after --, or as script lines through the pipeline) against a deployment, as one
/// change: -L and -S print what iptables prints; changes return the deployment as published.
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "BpfIptables", SupportsShouldProcess = true)]
[OutputType(typeof(string), typeof(DeploymentInfo))]
public sealed class InvokeBpfIptablesCommand : PSCmdlet
{
    private readonly List<string> _lines = [];

    /// <summary>The iptables arguments, after --; several commands are separated by ';' arguments.</summary>
    [Parameter(Position = 0, ValueFromRemainingArguments = true)]
    public object[] Arguments { get; set; } = [];

    /// <summary>Lines of a script of iptables commands ("iptables -A INPUT ..." or "-A INPUT ...").</summary>
    [Parameter(ValueFromPipeline = true)]
    [AllowEmptyString]
    public string[] Line { get; set; } = [];

    [Parameter]
    [ArgumentCompleter(typeof(DeploymentNameCompleter))]
    public string Name { get; set; } = IptablesDeployment.DefaultName;

    [Parameter]
    [ArgumentCompleter(typeof(NetworkNamespaceCompleter))]
    public string? NetworkNamespace { get; set; }

    /// <summary>Built-in chain name to placement text ("xdp:eth1"), as Import-BpfRuleset takes it.</summary>
    [Parameter]
    public Hashtable? ChainPlacement { get; set; }

    /// <summary>IPv4 (iptables) or IPv6 (ip6tables) for commands that do not say -4 or -6.</summary>
    [Parameter]
    public IpFamily Family { get; set; } = IpFamily.Ipv4;

    protected override void ProcessRecord() => _lines.AddRange(Line);

    protected override void EndProcessing()
    {
        IReadOnlyList<IptablesCommand> commands;
        IptablesSaveOptions placements;
        try
        {
            commands = [.. IptablesCommand.ParseBatch(Arguments.Select(Text).ToList(), Family), .. IptablesCommand.ParseLines(_lines, Family)];
            placements = Placements();
        }
        catch (BpfilterException e)
        {
            // As iptables fails with a status, and the next command of a script runs: an error that changed nothing.
            WriteError(ErrorRecords.From(e, Name));
            return;
        }
        if (commands.Count == 0)
        {
            WriteError(ErrorRecords.From(new BpfilterException("IptablesCommandInvalid", FailureCategory.InvalidArgument,
                "no iptables command given: write one after -- (Invoke-BpfIptables -- -L), or pipe lines of a script"), Name));
            return;
        }
        var changing = commands.Where(c => c.Changes || c.Zeroes).ToList();
        if (changing.Count > 0)
        {
            var where = NetworkNamespace is null ? "" : $" in network namespace {NetworkNamespace}";
            var what = changing.Count == 1 ? changing[0].ToString() : $"{changing.Count} commands ({string.Join("; ", changing)})";
            if (!ShouldProcess($"deployment '{Name}'{where}", $"iptables {what}")) return;
        }
        IptablesResult result;
        try
        {
            result = IptablesDeployment.Run(Name, commands, new PublishOptions(NetworkNamespace), placements, WriteVerbose);
        }
        catch (BpfilterException e)
        {
            WriteError(ErrorRecords.From(e, Name));
            return;
        }
        foreach (var line in result.Output) WriteObject(line);
        bool listed = commands.Any(c => c.Operation is IptablesOperation.List or IptablesOperation.ListRules);
        if (!listed && result.Deployment is { } deployment) WriteObject(deployment);
    }

    private IptablesSaveOptions Placements()
    {
        var placements = new Dictionary<string, ChainPlacement>(StringComparer.OrdinalIgnoreCase);
        foreach (DictionaryEntry entry in ChainPlacement ?? new Hashtable())
            placements[entry.Key.ToString() ?? ""] = Engine.Formats.Iptables.ChainPlacement.Parse(LanguagePrimitives.ConvertTo<string>(entry.Value));
        return new IptablesSaveOptions(placements);
    }

    /// <summary>
    /// An argument as typed: PowerShell reads "80,443" as an array, which iptables means as the comma list; a number
    /// keeps the text it was typed as (0x10 stays 0x10).
    /// </summary>
    private static string Text(object? argument)
    {
        var value = argument is PSObject wrapped && wrapped.BaseObject is IList ? wrapped.BaseObject : argument;
        return value is IList list ? string.Join(',', list.Cast<object?>().Select(Text)) : argument?.ToString() ?? "";
    }
}
