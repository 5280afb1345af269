using System.Management.Automation;
using System.Text;
using Bpfilter.Engine;
using Bpfilter.Engine.Formats;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Commands;

/// <summary>
/// Writes rulesets as text: into a file with -Path (overwriting it, as Out-File does, unless -NoClobber; a read-only
/// file only with -Force), else to the pipeline, one string per ruleset. A file holds one ruleset, so -Path with more
/// than one piped ruleset writes nothing.
/// </summary>
[Cmdlet(VerbsData.Export, "BpfRuleset", SupportsShouldProcess = true)]
[OutputType(typeof(string))]
public sealed class ExportBpfRulesetCommand : PSCmdlet
{
    [Parameter(Mandatory = true, ValueFromPipeline = true)]
    public Ruleset? Ruleset { get; set; }

    [Parameter(Position = 0)]
    [Alias("FilePath")]
    public string? Path { get; set; }

    [Parameter]
    public RulesetFormat Format { get; set; } = RulesetFormat.Yaml;

    /// <summary>For -Format IptablesSave: which family's rules (iptables-save or ip6tables-save text).</summary>
    [Parameter]
    public IpFamily Family { get; set; } = IpFamily.Ipv4;

    [Parameter]
    public SwitchParameter Force { get; set; }

    [Parameter]
    [Alias("NoOverwrite")]
    public SwitchParameter NoClobber { get; set; }

    private readonly List<(Ruleset Ruleset, string Text)> _forFile = [];

    protected override void ProcessRecord()
    {
        string text;
        try
        {
            text = RulesetWriter.Write(Ruleset!, Format, Family);
        }
        catch (BpfilterException e)
        {
            WriteError(ErrorRecords.From(e, Ruleset));
            return;
        }
        if (Path is null) WriteObject(text);
        else _forFile.Add((Ruleset!, text));
    }

    protected override void EndProcessing()
    {
        if (Path is null || _forFile.Count == 0) return;
        if (_forFile.Count > 1)
        {
            var names = string.Join(", ", _forFile.Select(f => $"'{f.Ruleset.Name}'"));
            WriteError(ErrorRecords.From(new BpfilterException("OneRulesetPerFile", FailureCategory.InvalidOperation,
                $"a ruleset file holds one ruleset, and {_forFile.Count} came ({names}): nothing was written; export each to a file of its own"), Path));
            return;
        }
        var (ruleset, text) = _forFile[0];
        var file = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Path, out var provider, out _);
        if (provider.Name != "FileSystem")
        {
            WriteError(new ErrorRecord(new ArgumentException($"{Path} is not a file system path"), "Bpfilter.NotAFileSystemPath",
                ErrorCategory.InvalidArgument, Path));
            return;
        }
        var target = new FileInfo(file);
        if (target.Exists && NoClobber)
        {
            WriteError(new ErrorRecord(new IOException($"{file} exists, and -NoClobber forbids overwriting it"), "Bpfilter.FileExists",
                ErrorCategory.ResourceExists, file));
            return;
        }
        if (target.Exists && target.IsReadOnly && !Force)
        {
            WriteError(new ErrorRecord(new UnauthorizedAccessException($"{file} is read-only: use -Force to overwrite it"), "Bpfilter.FileReadOnly",
                ErrorCategory.PermissionDenied, file));
            return;
        }
        if (!ShouldProcess(file, $"Write ruleset '{ruleset.Name}' as {Format}")) return;
        try
        {
            if (target.Exists && target.IsReadOnly) target.IsReadOnly = false;
            File.WriteAllText(file, text, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            WriteError(new ErrorRecord(e, "Bpfilter.FileNotWritable", ErrorCategory.WriteError, file));
        }
    }
}
